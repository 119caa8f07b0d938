import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import IORedis from 'ioredis';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { AuditCheckpointStore, CheckpointOutcome, takeCheckpoint } from '@rcflow/audit';
import { redisOptionsFromUrl } from '@rcflow/jobs';

/**
 * Takes a signed checkpoint of every audit stream's head every AUDIT_CHECKPOINT_INTERVAL_MS (0:
 * never): one across all workers (an advisory lock; a taker that finds a checkpoint younger than
 * half the interval leaves it), written to AUDIT_CHECKPOINT_DIR and to Redis.
 */
@Injectable()
export class AuditCheckpointer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(AuditCheckpointer.name);
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<CheckpointOutcome | null> | null = null;
  private redis: IORedis | null = null;
  private store: AuditCheckpointStore | null = null;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  onApplicationBootstrap(): void {
    const { intervalMs } = this.config.audit.checkpoint;
    if (intervalMs === 0) return;
    this.timer = setInterval(() => void this.tick(), intervalMs);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
    this.redis?.disconnect();
  }

  /** One periodic round; resolves with what happened (null: it failed, and was logged). */
  tick(): Promise<CheckpointOutcome | null> {
    if (this.running) return this.running;
    this.running = takeCheckpoint(this.dataSource, this.config.audit.hmacKey, this.checkpoints(), {
      skipIfNewerThanMs: this.config.audit.checkpoint.intervalMs / 2,
    })
      .then((outcome) => {
        if (outcome.taken) this.logger.log(`audit checkpoint of ${outcome.checkpoint.streams} streams written to ${outcome.path}`);
        return outcome;
      })
      .catch((err: unknown) => {
        // The next round tries again; a lasting failure shows as an old checkpoint in the verification.
        this.logger.warn(`audit checkpoint skipped: ${(err as Error).message}`);
        return null;
      })
      .finally(() => (this.running = null));
    return this.running;
  }

  private checkpoints(): AuditCheckpointStore {
    if (!this.store) {
      this.redis = new IORedis({ ...redisOptionsFromUrl(this.config.redis.url), maxRetriesPerRequest: 2 });
      this.redis.on('error', () => undefined); // reconnects; a failed round is logged by tick
      this.store = new AuditCheckpointStore({ ...this.config.audit.checkpoint, redis: this.redis });
    }
    return this.store;
  }
}
