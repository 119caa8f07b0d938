import type { EntityManager } from 'typeorm';
import { JobItem, jobIdOf } from './jobs';

/** Records jobs to enqueue in the caller's transaction; the relay moves them to BullMQ after commit. */
export async function writeOutbox(manager: EntityManager, items: JobItem[]): Promise<void> {
  if (items.length === 0) return;
  await manager.query(
    `INSERT INTO outbox (queue, job_name, job_id, payload)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])`,
    [
      items.map((i) => i.queue),
      items.map((i) => i.name),
      items.map((i) => jobIdOf(i)),
      items.map((i) => JSON.stringify(i.data)),
    ],
  );
}
