import { Logger } from '@nestjs/common';
import { DelayedError, type Job, type Worker } from 'bullmq';

/**
 * Starts a processor's BullMQ worker (registered with `autorun: false`) with its concurrency and
 * lock: a killed worker's jobs are picked up by another once their lock lapses. Redis outages are
 * logged every few seconds, not on every retry; a worker loop that dies stops the process, so a
 * supervisor restarts it.
 */
export function runWorker(worker: Worker, name: string, concurrency: number, lockMs: number): void {
  const logger = new Logger(name);
  worker.concurrency = concurrency;
  Object.assign(worker.opts, { lockDuration: lockMs, stalledInterval: lockMs });
  let last = 0;
  worker.on('error', (err) => {
    if (Date.now() - last > 5000) logger.warn(`worker: ${err.message}`);
    last = Date.now();
  });
  worker.run().catch((err: unknown) => {
    logger.fatal(`worker stopped: ${err instanceof Error ? err.message : String(err)}`);
    process.kill(process.pid, 'SIGTERM');
  });
}

/**
 * Puts a job back in the delayed set until `runAt` without counting an attempt (a timer that fired
 * early, a vendor's Retry-After); BullMQ needs the DelayedError thrown to leave the job there.
 */
export async function delayJob(job: Job, runAt: number, token: string | undefined): Promise<never> {
  await job.moveToDelayed(runAt, token);
  throw new DelayedError();
}
