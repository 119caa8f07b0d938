import type { DataSource } from 'typeorm';
import { ActorKind, ChainedEvent, GENESIS_HASH, eventHash } from './audit-chain';

export interface AuditProblem {
  stream: string;
  seq: number | null;
  eventId: string | null;
  problem: string;
}

export interface AuditVerification {
  ok: boolean;
  eventsChecked: number;
  streamsChecked: number;
  /** The first problems found, in stream order (at most `maxProblems`). */
  problems: AuditProblem[];
}

interface StoredRow {
  id: string;
  stream: string;
  seq: number;
  occurred_at: Date;
  actor_id: string | null;
  actor_kind: ActorKind;
  action: string;
  outcome: string;
  session_id: string | null;
  device_id: string | null;
  viewer_id: string | null;
  ticket_ref: string | null;
  reason: string | null;
  data: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

/**
 * Walks every stream in (stream, seq) order, in pages, and checks that each event's HMAC
 * recomputes, links to its predecessor and that sequence numbers have no gaps; then that each
 * stream's head and each session's version agree with the last event, which catches removed tails.
 */
export async function verifyAudit(
  dataSource: DataSource,
  key: string,
  options: { pageSize?: number; maxProblems?: number } = {},
): Promise<AuditVerification> {
  const pageSize = options.pageSize ?? 5000;
  const maxProblems = options.maxProblems ?? 100;
  const problems: AuditProblem[] = [];
  const add = (p: AuditProblem) => {
    if (problems.length < maxProblems) problems.push(p);
  };
  const lastOfStream = new Map<string, { seq: number; hash: string }>();
  let checked = 0;
  let current: { stream: string; seq: number; hash: string } | null = null;
  let cursor: [string, number] = ['', 0];

  for (;;) {
    const rows: StoredRow[] = await dataSource.query(
      `SELECT id, stream, seq, occurred_at, actor_id, actor_kind, action, outcome, session_id, device_id,
              viewer_id, ticket_ref, reason, data, prev_hash, hash
         FROM audit_events WHERE (stream, seq) > ($1, $2) ORDER BY stream, seq LIMIT $3`,
      [cursor[0], cursor[1], pageSize],
    );
    for (const row of rows) {
      checked++;
      if (!current || current.stream !== row.stream) {
        if (current) lastOfStream.set(current.stream, { seq: current.seq, hash: current.hash });
        current = { stream: row.stream, seq: 0, hash: GENESIS_HASH };
      }
      if (row.seq !== current.seq + 1) {
        add({ stream: row.stream, seq: row.seq, eventId: row.id, problem: `expected seq ${current.seq + 1}, found ${row.seq}: events missing or reordered` });
      }
      if (row.prev_hash !== current.hash) {
        add({ stream: row.stream, seq: row.seq, eventId: row.id, problem: 'prev_hash does not match the previous event: an event was removed, inserted or reordered' });
      }
      const event: ChainedEvent = {
        stream: row.stream,
        seq: row.seq,
        occurredAt: new Date(row.occurred_at),
        actorId: row.actor_id,
        actorKind: row.actor_kind,
        action: row.action,
        outcome: row.outcome,
        sessionId: row.session_id,
        deviceId: row.device_id,
        viewerId: row.viewer_id,
        ticketRef: row.ticket_ref,
        reason: row.reason,
        data: row.data,
        prevHash: row.prev_hash,
      };
      if (eventHash(key, event) !== row.hash) {
        add({ stream: row.stream, seq: row.seq, eventId: row.id, problem: 'hash does not match the stored content: the event was altered' });
      }
      current = { stream: row.stream, seq: row.seq, hash: row.hash };
    }
    if (rows.length < pageSize) break;
    const last = rows[rows.length - 1];
    cursor = [last.stream, last.seq];
  }
  if (current) lastOfStream.set(current.stream, { seq: current.seq, hash: current.hash });

  const heads: { stream: string; seq: number; hash: string }[] = await dataSource.query(
    'SELECT stream, seq, hash FROM audit_stream_heads',
  );
  for (const head of heads) {
    const last = lastOfStream.get(head.stream);
    if (!last) {
      add({ stream: head.stream, seq: head.seq, eventId: null, problem: 'stream has a head but no events: events were removed' });
    } else if (last.seq !== head.seq || last.hash !== head.hash) {
      add({ stream: head.stream, seq: last.seq, eventId: null, problem: `last event is seq ${last.seq} but the head records seq ${head.seq}: events were removed or added` });
    }
    lastOfStream.delete(head.stream);
  }
  for (const [stream, last] of lastOfStream) {
    add({ stream, seq: last.seq, eventId: null, problem: 'stream has events but no head' });
  }
  // Every session transition writes one event: a session's version is its stream's length.
  const mismatched: { id: string; version: number; seq: number | null }[] = await dataSource.query(
    `SELECT s.id, s.version, h.seq FROM sessions s
       LEFT JOIN audit_stream_heads h ON h.stream = 'session:' || s.id::text
      WHERE h.seq IS DISTINCT FROM s.version LIMIT $1`,
    [maxProblems],
  );
  for (const m of mismatched) {
    add({ stream: `session:${m.id}`, seq: m.seq, eventId: null, problem: `session is at version ${m.version} but its audit stream has ${m.seq ?? 0} events` });
  }
  return { ok: problems.length === 0, eventsChecked: checked, streamsChecked: heads.length, problems };
}
