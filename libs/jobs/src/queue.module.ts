import { DynamicModule, Inject, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import { BullModule, getQueueToken } from '@nestjs/bullmq';
import { Queue } from 'bullmq';
import type { RcflowConfig } from '@rcflow/config';
import { QueueName, defaultJobOptions } from './jobs';
import { OUTBOX_QUEUES, OutboxRelay } from './outbox-relay.service';
import { RedisPolicyGuard } from './redis-policy.guard';
import { redisOptionsFromUrl } from './redis';

/**
 * One warning per 5 s for every queue of this process while Redis does not answer: a queue without
 * an 'error' listener prints each failed reconnect as a stack trace (one per queue, several a second).
 */
function redisErrorWarner(logger: Logger): (err: Error) => void {
  let last = 0;
  let missed = 0;
  return (err) => {
    if (Date.now() - last > 5000) {
      logger.warn(`Redis: ${err.message}${missed ? ` (${missed} more since the last warning)` : ''}`);
      last = Date.now();
      missed = 0;
    } else missed++;
  };
}

const QUEUE_ERRORS = Symbol('QUEUE_ERRORS');

/** BullMQ connection, the queues and the outbox relay, for every app that enqueues or works. */
/** How long the outbox relay waits for Redis to take one batch. */
const RELAY_COMMAND_TIMEOUT_MS = 10_000;

@Module({})
export class QueueModule implements OnApplicationShutdown {
  constructor(@Inject(OUTBOX_QUEUES) private readonly outboxQueues: ReadonlyMap<string, Queue>) {}

  static forRoot(config: RcflowConfig): DynamicModule {
    const base = {
      ...redisOptionsFromUrl(config.redis.url),
      maxRetriesPerRequest: null,
      retryStrategy: (times: number) => Math.min(100 * times, 2000),
    };
    return {
      module: QueueModule,
      // Global: intake (libs/sessions) and the apps share one relay and one set of queues.
      global: true,
      imports: [
        BullModule.forRoot({ connection: base, prefix: config.redis.prefix, defaultJobOptions: defaultJobOptions(config.jobs) }),
        BullModule.registerQueue(...Object.values(QueueName).map((name) => ({ name }))),
      ],
      providers: [
        RedisPolicyGuard,
        OutboxRelay,
        {
          // The queues the apps inject (BullModule.registerQueue) are heard too.
          provide: QUEUE_ERRORS,
          inject: Object.values(QueueName).map((name) => getQueueToken(name)),
          useFactory: (...queues: Queue[]) => {
            const warn = redisErrorWarner(new Logger('Queue'));
            for (const q of queues) q.on('error', warn);
            return true;
          },
        },
        {
          provide: OUTBOX_QUEUES,
          // The relay's own producers fail fast while Redis is down (the outbox keeps the rows),
          // and give up on a Redis that is connected but silent (a partition) instead of holding
          // the batch's row locks until TCP gives up; a late-arriving addBulk is harmless (job ids
          // are the rows'). Workers keep the default connection, which waits for Redis to come back.
          useFactory: () => {
            const warn = redisErrorWarner(new Logger('OutboxQueue'));
            return new Map(
              Object.values(QueueName).map((name) => {
                const q = new Queue(name, {
                  connection: { ...base, enableOfflineQueue: false, commandTimeout: RELAY_COMMAND_TIMEOUT_MS },
                  prefix: config.redis.prefix,
                  defaultJobOptions: defaultJobOptions(config.jobs),
                });
                q.on('error', warn);
                return [name, q];
              }),
            );
          },
        },
      ],
      // OUTBOX_QUEUES: the API's /metrics reads queue depths through these (they fail fast while Redis is down).
      exports: [BullModule, OutboxRelay, OUTBOX_QUEUES],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.outboxQueues.values()].map((q) => q.close()));
  }
}
