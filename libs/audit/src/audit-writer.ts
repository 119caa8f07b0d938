import type { EntityManager } from 'typeorm';
import { findUnstorableText } from '@rcflow/domain';
import { AuditEntry, ChainedEvent, GENESIS_HASH, eventHash } from './audit-chain';
import { auditAppendSql } from './audit-sql';

/** The last event of a stream: what the next event chains to. */
export interface StreamHead {
  seq: number;
  hash: string;
}

export interface ChainedRows {
  /** One array of values per event, in AUDIT_EVENT_COLUMNS order. */
  rows: unknown[][];
  /** The new head of every stream given in `heads` or touched by the entries. */
  heads: Map<string, StreamHead>;
}

/**
 * Assigns seq and hashes to entries, chaining each to the head of its stream (a stream missing from
 * `heads` starts at genesis). Pure: the caller writes the rows and the new heads.
 */
export function chainEntries(key: string, entries: AuditEntry[], heads: Map<string, StreamHead>, now: Date): ChainedRows {
  const next = new Map(heads);
  const rows: unknown[][] = [];
  for (const entry of entries) {
    const head = next.get(entry.stream) ?? { seq: 0, hash: GENESIS_HASH };
    const event: ChainedEvent = {
      stream: entry.stream,
      seq: head.seq + 1,
      occurredAt: now,
      actorId: entry.actorId,
      actorKind: entry.actorKind,
      action: entry.action,
      outcome: entry.outcome,
      sessionId: entry.sessionId ?? null,
      deviceId: entry.deviceId ?? null,
      viewerId: entry.viewerId ?? null,
      ticketRef: entry.ticketRef ?? null,
      reason: entry.reason ?? null,
      data: entry.data ?? {},
      prevHash: head.hash,
    };
    // The last line behind the boundaries' rule: PostgreSQL would refuse NUL, and store U+FFFD for a
    // lone surrogate while the hash covers the original (a false tamper alarm). Refuse instead.
    const unstorable = findUnstorableText(event);
    if (unstorable) throw new TypeError(`audit event on ${event.stream}: ${unstorable.path} ${unstorable.problem}`);
    const hash = eventHash(key, event);
    next.set(entry.stream, { seq: event.seq, hash });
    rows.push([
      event.stream,
      event.seq,
      event.occurredAt,
      event.actorId,
      event.actorKind,
      event.action,
      event.outcome,
      event.sessionId,
      event.deviceId,
      event.viewerId,
      event.ticketRef,
      event.reason,
      JSON.stringify(event.data),
      event.prevHash,
      hash,
    ]);
  }
  return { rows, heads: next };
}

/**
 * Appends events inside the caller's transaction and returns the new heads of their streams. Only
 * the streams touched are locked (their head rows), so writers of different sessions never wait for
 * each other. For administration, enrolment and other cold paths; session transitions and intake
 * chain from the head they read and write in one statement (same renderer, auditAppendSql).
 */
/** The advisory-lock key space of audit streams (the two-int form: apart from rcflow's single-bigint locks). */
const STREAM_LOCK_SPACE = 0x61756469; // 'audi'

export async function appendAudit(
  manager: EntityManager,
  key: string,
  entries: AuditEntry[],
  now: Date = new Date(),
  options: { newStreams?: boolean } = {},
): Promise<Map<string, StreamHead>> {
  if (entries.length === 0) return new Map();
  const streams = [...new Set(entries.map((e) => e.stream))].sort();
  const heads = new Map<string, StreamHead>();
  // A stream named after a row created in this transaction has no head yet: nothing to lock or read.
  if (!options.newStreams) {
    // FOR UPDATE cannot lock a head that does not exist yet: two writers of a stream's first event
    // would both start it (the second failing). A transaction-scoped advisory lock per stream, taken
    // in stream order, serialises them; the heads are read in the next statement, which sees the
    // head the other committed.
    await manager.query('SELECT pg_advisory_xact_lock($2::int, hashtext(s)) FROM unnest($1::text[]) AS s ORDER BY s', [
      streams,
      STREAM_LOCK_SPACE,
    ]);
  }
  const rows: { seq: number; hash: string; stream: string }[] = options.newStreams
    ? []
    : await manager.query('SELECT stream, seq, hash FROM audit_stream_heads WHERE stream = ANY($1) ORDER BY stream FOR UPDATE', [streams]);
  for (const r of rows) heads.set(r.stream, { seq: r.seq, hash: r.hash });

  const chained = chainEntries(key, entries, heads, now);
  const params: unknown[] = [];
  const sql = auditAppendSql((v) => `$${params.push(v)}`, chained, heads, 'a');
  // The heads are locked: they can only fail to match when a "new" stream already had events.
  await manager.query(
    `WITH ${sql.ctes.join(',\n')}
     SELECT CASE WHEN ${sql.headsMatch} THEN 0 ELSE rcflow_fail('audit stream heads moved while locked') END AS ok`,
    params,
  );
  return chained.heads;
}
