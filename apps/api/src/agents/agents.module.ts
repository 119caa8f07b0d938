import { DynamicModule, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import IORedis from 'ioredis';
import type { RcflowConfig } from '@rcflow/config';
import { agentBusKeys } from '@rcflow/agent-link';
import { redisOptionsFromUrl } from '@rcflow/jobs';
import { SessionsCoreModule } from '@rcflow/sessions';
import { AGENT_BUS_REDIS, AgentBusClients, AgentGateway } from './agent-gateway';
import { AgentSockets } from './agent-sockets';
import { AgentsController } from './agents.controller';
import { EnrolmentService } from './enrolment.service';
import { HeartbeatBatcher } from './heartbeat-batcher';
import { PreapprovalAnswers } from './preapproval-answers.service';
import { UpgradeRefusals } from './upgrade-refusals';
import { ViewerTokens } from './viewer-tokens.service';

/** Enrolment, device credentials and the agents' WebSocket. */
@Module({})
export class AgentsModule implements OnApplicationShutdown {
  constructor(@Inject(AGENT_BUS_REDIS) private readonly bus: AgentBusClients) {}

  static forRoot(config: RcflowConfig): DynamicModule {
    return {
      module: AgentsModule,
      // AgentSockets and ViewerTokens serve administration too (revoking a credential closes its sockets).
      global: true,
      imports: [SessionsCoreModule],
      controllers: [AgentsController],
      providers: [
        EnrolmentService,
        ViewerTokens,
        HeartbeatBatcher,
        PreapprovalAnswers,
        AgentGateway,
        UpgradeRefusals,
        AgentSockets,
        {
          provide: AGENT_BUS_REDIS,
          useFactory: (): AgentBusClients => {
            const options = { ...redisOptionsFromUrl(config.redis.url), maxRetriesPerRequest: 3 };
            const redis = new IORedis(options);
            const subscriber = new IORedis(options);
            for (const c of [redis, subscriber]) c.on('error', () => undefined); // reconnects by itself
            return { redis, subscriber, keys: agentBusKeys(config.redis.prefix) };
          },
        },
      ],
      exports: [EnrolmentService, AgentGateway, ViewerTokens, AgentSockets],
    };
  }

  onApplicationShutdown(): void {
    this.bus.redis.disconnect();
    this.bus.subscriber.disconnect();
  }
}
