import { Client, ClientConfig, escapeLiteral } from 'pg';
import type { AuditProblem } from './audit-chain-walk';
import { ChainWalk } from './audit-chain-walk';
import { AuditCopyCheck, StreamRange, verifyRange } from './audit-copy-check';

/** What a reader needs: its own connection, the key, and the snapshot every reader shares. */
export interface ReaderInit {
  pg: ClientConfig;
  key: string;
  /** From pg_export_snapshot(), so all readers see the same instant; null reads a snapshot of its own. */
  snapshot: string | null;
  maxProblems: number;
}

export interface RangeJob {
  index: number;
  range: StreamRange;
}

export interface RangeResult {
  index: number;
  events: number;
  streams: number;
  problems: AuditProblem[];
}

/**
 * One reader of a parallel verification: a connection of its own in a read-only transaction on
 * the shared snapshot, verifying stream ranges handed out by `next` until it returns null. Runs in
 * a worker thread (audit-verify.worker.ts) or, without one, on the caller's event loop.
 */
export async function runReader(init: ReaderInit, next: () => Promise<RangeJob | null>, report: (r: RangeResult) => void): Promise<void> {
  const client = new Client(init.pg);
  // Without a listener a dropped connection would crash the process; the query in flight rejects anyway.
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    if (init.snapshot) await client.query(`SET TRANSACTION SNAPSHOT ${escapeLiteral(init.snapshot)}`);
    // Walk the (stream, seq) index: for a range of a large table the planner would otherwise
    // rather scan the whole table (in parallel workers) and sort, per range. Parallelism is
    // ours (the readers), and JIT compiles nothing worth its time in these queries.
    await client.query(
      `SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off; SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL jit = off`,
    );
    const check = new AuditCopyCheck(init.key);
    for (let job = await next(); job; job = await next()) {
      const walk = new ChainWalk(init.maxProblems);
      await verifyRange(client, check, job.range, walk);
      report({ index: job.index, events: walk.events, streams: walk.streams, problems: walk.problems });
    }
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
}
