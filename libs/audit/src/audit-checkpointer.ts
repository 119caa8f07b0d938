import type { DataSource } from 'typeorm';
import { AuditCheckpoint, CheckpointHead, signCheckpoint } from './audit-checkpoint';
import { AuditCheckpointStore } from './audit-checkpoint-store';
import { pgClientConfig } from './copy-out';

/** The PostgreSQL advisory lock held while a checkpoint is taken (distinct from the verify lock). */
export const CHECKPOINT_LOCK_KEY = '125771245711224';

export type CheckpointOutcome =
  | { taken: true; path: string; checkpoint: AuditCheckpoint }
  /** Another process is taking one (`locked`), or one younger than `skipIfNewerThanMs` exists (`fresh`). */
  | { taken: false; reason: 'locked' | 'fresh' };

export interface TakeCheckpointOptions {
  /** Skip when the newest stored checkpoint is younger than this: the periodic taker's "one per interval". */
  skipIfNewerThanMs?: number;
  now?: () => Date;
}

/**
 * Reads every stream's head in one REPEATABLE READ snapshot, signs them under the audit key and
 * stores the checkpoint (directory and Redis). One taker at a time across processes: a
 * session-level advisory lock on the connection that reads (released with it if the process
 * dies); a second taker meanwhile returns `locked` rather than waiting to write a duplicate.
 */
export async function takeCheckpoint(
  dataSource: DataSource,
  key: string,
  store: AuditCheckpointStore,
  options: TakeCheckpointOptions = {},
): Promise<CheckpointOutcome> {
  const now = options.now ?? (() => new Date());
  const runner = dataSource.createQueryRunner();
  const shared = pgClientConfig(dataSource.options, 'rcflow-audit-checkpoint') !== null;
  try {
    if (shared) {
      const [row] = (await runner.query('SELECT pg_try_advisory_lock($1::bigint) AS locked', [CHECKPOINT_LOCK_KEY])) as {
        locked: boolean;
      }[];
      if (!row?.locked) return { taken: false, reason: 'locked' };
    }
    try {
      if (options.skipIfNewerThanMs !== undefined) {
        const { found } = await store.newest(key);
        if (found && now().getTime() - Date.parse(found.checkpoint.takenAt) < options.skipIfNewerThanMs)
          return { taken: false, reason: 'fresh' };
      }
      await runner.startTransaction('REPEATABLE READ');
      let rows: { stream: string; seq: number; hash: string }[];
      let takenAt: Date;
      try {
        // Cold path, once per interval: one statement over the heads table (TypeORM has no entity for it here).
        rows = (await runner.query('SELECT stream, seq, hash FROM audit_stream_heads')) as typeof rows;
        // The snapshot's own time would be better still; this is taken right after it, before any commit we could miss.
        takenAt = now();
        await runner.commitTransaction();
      } catch (err) {
        await runner.rollbackTransaction().catch(() => undefined);
        throw err;
      }
      const checkpoint = signCheckpoint(
        key,
        rows.map((r): CheckpointHead => [r.stream, r.seq, r.hash]),
        takenAt,
      );
      const path = await store.save(checkpoint);
      return { taken: true, path, checkpoint };
    } finally {
      if (shared) await runner.query('SELECT pg_advisory_unlock($1::bigint)', [CHECKPOINT_LOCK_KEY]);
    }
  } finally {
    await runner.release();
  }
}
