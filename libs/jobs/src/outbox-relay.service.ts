import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';

interface OutboxPending {
  id: string;
  queue: string;
  job_name: string;
  job_id: string;
  payload: Record<string, unknown>;
  run_at: Date | null;
}

const BATCH = 500;
/** A job due later waits in BullMQ's delayed set until its time. */
function delayOf(r: OutboxPending): { delay?: number } {
  if (!r.run_at) return {};
  const ms = new Date(r.run_at).getTime() - Date.now();
  return ms > 0 ? { delay: ms } : {};
}

/** Nest token of the relay's producers: a map from queue name to its queue. */
export const OUTBOX_QUEUES = Symbol('OUTBOX_QUEUES');

/**
 * Moves outbox rows to BullMQ and deletes them once Redis has them. Several relays may run
 * (SKIP LOCKED); a row enqueued twice is deduplicated by its job id. While Redis is down rows stay
 * and are retried with backoff, so a request accepted with 202 is never lost.
 */
@Injectable()
export class OutboxRelay implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(OutboxRelay.name);
  private timer: NodeJS.Timeout | null = null;
  private draining: Promise<void> | null = null;
  private again = false;
  private stopped = false;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(OUTBOX_QUEUES) private readonly queues: ReadonlyMap<string, Queue>,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => this.kick(), this.config.outbox.pollMs);
    this.timer.unref();
    this.kick();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.draining;
  }

  /** Drains now (after a commit that wrote outbox rows), without waiting for the poll. */
  kick(): void {
    if (this.stopped) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = this.drainAll()
      .catch((err: unknown) => this.logger.warn(`outbox relay: ${(err as Error).message}; rows stay and are retried`))
      .finally(() => {
        this.draining = null;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async drainAll(): Promise<void> {
    while (!this.stopped && (await this.drainBatch()) === BATCH);
  }

  /** Moves one batch; returns how many rows it moved. */
  async drainBatch(): Promise<number> {
    return this.dataSource.transaction(async (tx) => {
      const rows: OutboxPending[] = await tx.query(
        `SELECT id, queue, job_name, job_id, payload, run_at FROM outbox
          WHERE available_at <= now() ORDER BY id LIMIT ${BATCH} FOR UPDATE SKIP LOCKED`,
      );
      if (rows.length === 0) return 0;
      const ids = rows.map((r) => r.id);
      try {
        const byQueue = new Map<string, OutboxPending[]>();
        for (const r of rows) {
          let list = byQueue.get(r.queue);
          if (!list) byQueue.set(r.queue, (list = []));
          list.push(r);
        }
        await Promise.all(
          [...byQueue].map(([queue, list]) =>
            this.queueFor(queue).addBulk(
              list.map((r) => ({ name: r.job_name, data: r.payload, opts: { jobId: r.job_id, ...delayOf(r) } })),
            ),
          ),
        );
      } catch (err) {
        await tx.query(
          `UPDATE outbox SET attempts = attempts + 1,
             available_at = now() + make_interval(secs => least(30, 0.2 * power(2, least(attempts, 8))))
           WHERE id = ANY($1)`,
          [ids],
        );
        this.logger.warn(`could not enqueue ${rows.length} outbox rows: ${(err as Error).message}`);
        return 0;
      }
      await tx.query('DELETE FROM outbox WHERE id = ANY($1)', [ids]);
      return rows.length;
    });
  }

  private queueFor(name: string): Queue {
    const queue = this.queues.get(name);
    if (!queue) throw new Error(`outbox row names unknown queue "${name}"`);
    return queue;
  }
}
