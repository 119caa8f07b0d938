import { DynamicModule, Module } from '@nestjs/common';
import type { RcflowConfig } from '@rcflow/config';
import { Inject, OnApplicationShutdown } from '@nestjs/common';
import IORedis from 'ioredis';
import { AGENT_LINK, AgentLink, LoopbackAgentLink, RedisAgentLink, agentBusKeys } from '@rcflow/agent-link';
import { QueueModule, redisOptionsFromUrl } from '@rcflow/jobs';
import { SessionsCoreModule } from '@rcflow/sessions';
import { AdvanceSessionHandler } from './handlers/advance-session.handler';
import { EndSessionHandler } from './handlers/end-session.handler';
import { ReconciliationSweep } from './reconciliation-sweep.service';
import { AuditCheckpointer } from './audit-checkpointer.service';
import { SessionNoticeHandler } from './notices/session-notice.handler';
import { SessionsProcessor } from './sessions.processor';
import { ScheduleOccurrenceHandler } from './schedules/schedule-occurrence.handler';
import { SchedulesProcessor } from './schedules/schedules.processor';
import { TicketWritebackHandler } from './ticket-writeback/ticket-writeback.handler';
import { TicketWritebacksProcessor } from './ticket-writeback/ticket-writebacks.processor';
import { WebhookDeliveryHandler } from './webhooks/webhook-delivery.handler';
import { WebhookDispatcher } from './webhooks/webhook-dispatcher.service';
import { WebhooksProcessor } from './webhooks/webhooks.processor';

/** The worker's link to agents: through Redis to whichever API holds the device's socket, or in-process. */
function createAgentLink(config: RcflowConfig): AgentLink & { close?: () => void } {
  if (config.agent.transport === 'loopback') return new LoopbackAgentLink(config.agent.loopback);
  const options = { ...redisOptionsFromUrl(config.redis.url), maxRetriesPerRequest: 3 };
  const redis = new IORedis(options);
  const subscriber = new IORedis(options);
  for (const c of [redis, subscriber]) c.on('error', () => undefined); // reconnects; a step that cannot reach Redis times out and retries
  const link = new RedisAgentLink(redis, subscriber, agentBusKeys(config.redis.prefix));
  return Object.assign(link, { close: () => [redis, subscriber].forEach((c) => c.disconnect()) });
}

/** The processors and what they need: the worker app is this without HTTP; the API imports it for the one-process mode. */
@Module({})
export class WorkerModule implements OnApplicationShutdown {
  constructor(@Inject(AGENT_LINK) private readonly agent: AgentLink & { close?: () => void }) {}

  onApplicationShutdown(): void {
    this.agent.close?.();
  }

  static forRoot(config: RcflowConfig): DynamicModule {
    return {
      module: WorkerModule,
      imports: [QueueModule.forRoot(config), SessionsCoreModule],
      providers: [
        { provide: AGENT_LINK, useFactory: () => createAgentLink(config) },
        AdvanceSessionHandler,
        EndSessionHandler,
        SessionsProcessor,
        TicketWritebackHandler,
        TicketWritebacksProcessor,
        ScheduleOccurrenceHandler,
        SessionNoticeHandler,
        SchedulesProcessor,
        ReconciliationSweep,
        AuditCheckpointer,
        WebhookDispatcher,
        WebhookDeliveryHandler,
        WebhooksProcessor,
      ],
      exports: [AGENT_LINK, ReconciliationSweep, QueueModule],
    };
  }
}
