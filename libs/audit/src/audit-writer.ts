import type { EntityManager } from 'typeorm';
import { AuditEntry, ChainedEvent, GENESIS_HASH, eventHash } from './audit-chain';

/** The last event of a stream: what the next event chains to. */
export interface StreamHead {
  seq: number;
  hash: string;
}

/** The columns of audit_events in the order `chainEntries` returns their values. */
export const AUDIT_EVENT_COLUMNS =
  'stream, seq, occurred_at, actor_id, actor_kind, action, outcome, session_id, device_id, viewer_id, ticket_ref, reason, data, prev_hash, hash';

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

/** `($n,…),($m,…)` for rows appended to params, numbering on from params' current length. */
export function valuesList(rows: unknown[][], params: unknown[]): string {
  return rows
    .map((c) => {
      const base = params.length;
      params.push(...c);
      return `(${c.map((_, i) => `$${base + i + 1}`).join(',')})`;
    })
    .join(',');
}

/**
 * Appends events inside the caller's transaction and returns the new heads of their streams. Only
 * the streams touched are locked (their head rows), so writers of different sessions never wait for
 * each other.
 */
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
  // (If it had one, the insert of seq 1 would violate uq_audit_stream_seq and roll everything back.)
  const rows: { seq: number; hash: string; stream: string }[] = options.newStreams
    ? []
    : await manager.query('SELECT stream, seq, hash FROM audit_stream_heads WHERE stream = ANY($1) ORDER BY stream FOR UPDATE', [streams]);
  for (const r of rows) heads.set(r.stream, { seq: r.seq, hash: r.hash });

  const chained = chainEntries(key, entries, heads, now);
  const params: unknown[] = [];
  const values = valuesList(chained.rows, params);
  const headStreams = [...chained.heads.keys()];
  const n = params.length;
  params.push(headStreams, headStreams.map((st) => chained.heads.get(st)!.seq), headStreams.map((st) => chained.heads.get(st)!.hash));
  // One round trip: the events and the new heads of their streams.
  await manager.query(
    `WITH events AS (INSERT INTO audit_events (${AUDIT_EVENT_COLUMNS}) VALUES ${values} RETURNING 1)
     INSERT INTO audit_stream_heads (stream, seq, hash)
       SELECT * FROM unnest($${n + 1}::text[], $${n + 2}::int[], $${n + 3}::text[])
     ON CONFLICT (stream) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash`,
    params,
  );
  return chained.heads;
}
