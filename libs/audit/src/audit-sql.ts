import { GENESIS_HASH } from './audit-chain';
import type { ChainedRows, StreamHead } from './audit-writer';

/** The columns of audit_events with their SQL types, in the order `chainEntries` returns values. */
export const AUDIT_EVENT_COLUMN_TYPES: readonly (readonly [column: string, type: string])[] = [
  ['stream', 'text'],
  ['seq', 'int'],
  ['occurred_at', 'timestamptz'],
  ['actor_id', 'uuid'],
  ['actor_kind', 'text'],
  ['action', 'text'],
  ['outcome', 'text'],
  ['session_id', 'uuid'],
  ['device_id', 'uuid'],
  ['viewer_id', 'uuid'],
  ['ticket_ref', 'text'],
  ['reason', 'text'],
  ['data', 'jsonb'],
  ['prev_hash', 'text'],
  ['hash', 'text'],
];

/** Appends a parameter and answers its placeholder (`$n`). */
export type ParamRef = (value: unknown) => string;

export interface AuditAppendSql {
  /** CTE definitions (`name AS (…)`) to place in the caller's WITH. */
  ctes: string[];
  /**
   * SQL boolean: every stream head written moved from the head the events were chained to. False
   * means the chain and what the caller read disagree: the caller must abort the statement.
   */
  headsMatch: string;
}

/**
 * The one chained insert of audit events: the events of `chained` and the fenced move of their
 * streams' heads from `before` (a stream absent there starts at genesis and gets its head row), as
 * CTEs of one statement. Every audit_events / audit_stream_heads write goes through here.
 *
 * With `gate`, the name of a CTE with a column `id`, only events whose session_id is in it are
 * written, with the heads of their streams: a transition or intake statement writes the events of
 * the sessions it actually changed. The statement text depends only on `name` and `gate`, never on
 * how many events there are, so it stays one prepared statement.
 */
export function auditAppendSql(
  p: ParamRef,
  chained: ChainedRows,
  before: ReadonlyMap<string, StreamHead>,
  name: string,
  gate?: string,
): AuditAppendSql {
  const columns = AUDIT_EVENT_COLUMN_TYPES.map(() => [] as unknown[]);
  const firstSession = new Map<string, unknown>();
  for (const row of chained.rows) {
    row.forEach((value, i) => columns[i]!.push(value));
    if (!firstSession.has(row[0] as string)) firstSession.set(row[0] as string, row[7]);
  }
  const k = {
    stream: [] as string[],
    oldSeq: [] as number[],
    oldHash: [] as string[],
    newSeq: [] as number[],
    newHash: [] as string[],
    gate: [] as unknown[],
  };
  for (const [stream, sessionId] of firstSession) {
    const old = before.get(stream) ?? { seq: 0, hash: GENESIS_HASH };
    const moved = chained.heads.get(stream)!;
    k.stream.push(stream);
    k.oldSeq.push(old.seq);
    k.oldHash.push(old.hash);
    k.newSeq.push(moved.seq);
    k.newHash.push(moved.hash);
    k.gate.push(sessionId);
  }
  const names = AUDIT_EVENT_COLUMN_TYPES.map(([c]) => c).join(', ');
  const events = AUDIT_EVENT_COLUMN_TYPES.map(([, type], i) => `${p(columns[i])}::${type}[]`).join(', ');
  const heads = `${p(k.stream)}::text[], ${p(k.oldSeq)}::int[], ${p(k.oldHash)}::text[], ${p(k.newSeq)}::int[], ${p(k.newHash)}::text[], ${p(k.gate)}::uuid[]`;
  return {
    ctes: [
      `${name}_e AS (INSERT INTO audit_events (${names})
         SELECT v.* FROM unnest(${events}) AS v(${names})${gate ? ` JOIN ${gate} ON ${gate}.id = v.session_id` : ''} RETURNING 1)`,
      `${name}_k AS (SELECT k.* FROM unnest(${heads}) AS k(stream, old_seq, old_hash, new_seq, new_hash, gate_id)${
        gate ? ` JOIN ${gate} ON ${gate}.id = k.gate_id` : ''
      })`,
      `${name}_hu AS (UPDATE audit_stream_heads SET seq = k.new_seq, hash = k.new_hash FROM ${name}_k k
         WHERE k.old_seq > 0 AND audit_stream_heads.stream = k.stream AND audit_stream_heads.seq = k.old_seq
           AND audit_stream_heads.hash = k.old_hash RETURNING 1)`,
      `${name}_hi AS (INSERT INTO audit_stream_heads (stream, seq, hash) SELECT k.stream, k.new_seq, k.new_hash FROM ${name}_k k
         WHERE k.old_seq = 0 ON CONFLICT (stream) DO NOTHING RETURNING 1)`,
    ],
    headsMatch: `((SELECT count(*) FROM ${name}_hu) + (SELECT count(*) FROM ${name}_hi) = (SELECT count(*) FROM ${name}_k))`,
  };
}
