import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import IORedis from 'ioredis';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { AuditCheckpointStore, NewestCheckpoint } from '@rcflow/audit';
import { redisOptionsFromUrl } from '@rcflow/jobs';

/** Where the API's verification finds the newest audit checkpoint: AUDIT_CHECKPOINT_DIR, then Redis. */
@Injectable()
export class AuditCheckpoints implements OnApplicationShutdown {
  private readonly redis: IORedis;
  private readonly store: AuditCheckpointStore;

  constructor(@Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig) {
    // No offline queue: with Redis down the verification says so and uses the directory, without waiting.
    this.redis = new IORedis({ ...redisOptionsFromUrl(config.redis.url), enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    this.redis.on('error', () => undefined);
    this.store = new AuditCheckpointStore({ ...config.audit.checkpoint, redis: this.redis });
  }

  newest(): Promise<NewestCheckpoint> {
    return this.store.newest(this.config.audit.hmacKey);
  }

  onApplicationShutdown(): void {
    this.redis.disconnect();
  }
}
