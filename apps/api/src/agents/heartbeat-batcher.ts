import { Inject, Injectable, Logger } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';

/** How often the last-seen times are written: a tenth of the presence grace, at most once a second. */
export function heartbeatFlushMs(presenceGraceSeconds: number): number {
  return Math.min(1000, (presenceGraceSeconds * 1000) / 10);
}

// The age is measured on this process's monotonic clock and subtracted from the database's
// `now()`, so neither clock skew nor the wait for the flush makes a device look older or newer.
// GREATEST: a write that was waiting never moves a device's last heartbeat back.
const FLUSH_SQL = `
  UPDATE devices d SET last_heartbeat_at = GREATEST(d.last_heartbeat_at, v.seen_at), updated_at = now()
    FROM (SELECT u.id, now() - make_interval(secs => u.age) AS seen_at
            FROM unnest($1::uuid[], $2::float8[]) AS u(id, age)) v
   WHERE d.id = v.id`;

/**
 * Heartbeats that report nothing new but the time: collected in memory per device and written
 * together, one UPDATE per interval, instead of one per frame. Hello and a heartbeat whose
 * presence changed are written at once by the gateway; only the last-seen time waits here, for
 * far less than the presence grace. A failed write keeps its devices for the next one.
 */
@Injectable()
export class HeartbeatBatcher {
  private readonly logger = new Logger('HeartbeatBatcher');
  /** Device id → when its latest heartbeat arrived (performance.now()). */
  private pending = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> | null = null;
  readonly intervalMs: number;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(RCFLOW_CONFIG) config: RcflowConfig,
  ) {
    this.intervalMs = heartbeatFlushMs(config.presenceGraceSeconds);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (!this.writing) void this.flush();
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and writes what is still pending. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }

  /** Devices whose heartbeat is waiting to be written. */
  get size(): number {
    return this.pending.size;
  }

  seen(deviceId: string): void {
    this.pending.set(deviceId, performance.now());
  }

  /** Writes every pending last-seen time (after a write already under way); resolves when done, failed writes kept. */
  flush(): Promise<void> {
    if (this.writing) return this.writing.then(() => this.flush());
    if (this.pending.size === 0) return Promise.resolve();
    this.writing = this.write().finally(() => (this.writing = null));
    return this.writing;
  }

  private async write(): Promise<void> {
    const batch = this.pending;
    this.pending = new Map();
    const now = performance.now();
    // Sorted, so that two API processes writing overlapping devices lock rows in the same order.
    const ids = [...batch.keys()].sort();
    const ages = ids.map((id) => Math.max(0, now - batch.get(id)!) / 1000);
    try {
      await this.dataSource.query(FLUSH_SQL, [ids, ages]);
    } catch (err) {
      for (const [id, at] of batch) {
        const later = this.pending.get(id);
        if (later === undefined || later < at) this.pending.set(id, at);
      }
      this.logger.warn(
        `could not record the heartbeats of ${batch.size} devices (${(err as Error).message}); retried in ${this.intervalMs} ms`,
      );
    }
  }
}
