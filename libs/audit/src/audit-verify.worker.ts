import { parentPort, workerData } from 'node:worker_threads';
import { RangeJob, RangeResult, ReaderInit, runReader } from './audit-verify-reader';

/** Messages between verifyAudit and its worker threads. */
export interface ToWorker {
  type: 'job';
  job: RangeJob | null;
}
export type FromWorker = { type: 'next' } | { type: 'result'; result: RangeResult } | { type: 'end' } | { type: 'error'; message: string };

// A worker thread of verifyAudit: one reader, asking the main thread for stream ranges.
if (parentPort) {
  const port = parentPort;
  const post = (m: FromWorker) => port.postMessage(m);
  let waiting: ((job: RangeJob | null) => void) | null = null;
  port.on('message', (m: ToWorker) => {
    // `job` is the only message the main thread sends (ToWorker).
    if (waiting) {
      const w = waiting;
      waiting = null;
      w(m.job);
    }
  });
  const next = () =>
    new Promise<RangeJob | null>((resolve) => {
      waiting = resolve;
      post({ type: 'next' });
    });
  runReader(workerData as ReaderInit, next, (result) => post({ type: 'result', result })).then(
    () => post({ type: 'end' }),
    (err: unknown) => post({ type: 'error', message: (err as Error).message }),
  );
}
