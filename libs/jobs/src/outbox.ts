import type { EntityManager } from 'typeorm';
import { JobItem, jobIdOf } from './jobs';

/** A job to record in the outbox; with `gateId`, only when that id is in the statement's gate CTE. */
export interface OutboxRow {
  job: JobItem;
  gateId?: string;
  /** When the job is due (BullMQ holds it delayed until then); absent: at once. */
  runAt?: Date | null;
}

/**
 * The one outbox insert, as a CTE body (`INSERT … SELECT …`) of a caller's statement; the relay moves
 * the rows to BullMQ after commit. With `gate`, the name of a CTE with a column `id`, a row is
 * written only when its `gateId` is in it (the session it belongs to was written by the same
 * statement). The text does not depend on the number of rows.
 */
export function outboxInsertSql(p: (value: unknown) => string, rows: readonly OutboxRow[], gate?: string): string {
  const arrays = [
    `${p(rows.map((r) => r.job.queue))}::text[]`,
    `${p(rows.map((r) => r.job.name))}::text[]`,
    `${p(rows.map((r) => jobIdOf(r.job)))}::text[]`,
    `${p(rows.map((r) => JSON.stringify(r.job.data)))}::jsonb[]`,
    `${p(rows.map((r) => r.gateId ?? null))}::uuid[]`,
    `${p(rows.map((r) => r.runAt ?? null))}::timestamptz[]`,
  ];
  return `INSERT INTO outbox (queue, job_name, job_id, payload, run_at)
    SELECT u.queue, u.job_name, u.job_id, u.payload, u.run_at FROM unnest(${arrays.join(', ')}) AS u(queue, job_name, job_id, payload, gate_id, run_at)${
      gate ? ` JOIN ${gate} ON ${gate}.id = u.gate_id` : ''
    }`;
}

/** Records jobs to enqueue in the caller's transaction; a row with `runAt` is held delayed until then. */
export async function writeOutbox(manager: EntityManager, items: (JobItem | OutboxRow)[]): Promise<void> {
  if (items.length === 0) return;
  const params: unknown[] = [];
  await manager.query(
    outboxInsertSql(
      (v) => `$${params.push(v)}`,
      items.map((i) => ('job' in i ? i : { job: i })),
    ),
    params,
  );
}
