import { DynamicModule, Module } from '@nestjs/common';
import type { RcflowConfig } from '@rcflow/config';
import { AGENT_LINK, LoopbackAgentLink } from '@rcflow/agent-link';
import { QueueModule } from '@rcflow/jobs';
import { AdvanceSessionHandler } from './handlers/advance-session.handler';
import { EndSessionHandler } from './handlers/end-session.handler';
import { ReconciliationSweep } from './reconciliation-sweep.service';
import { SessionsProcessor } from './sessions.processor';

/** The processors and what they need; imported by the worker app and by the one-process mode. */
@Module({})
export class WorkerModule {
  static forRoot(config: RcflowConfig): DynamicModule {
    return {
      module: WorkerModule,
      imports: [QueueModule.forRoot(config)],
      providers: [
        { provide: AGENT_LINK, useFactory: () => new LoopbackAgentLink(config.agent.loopback) },
        AdvanceSessionHandler,
        EndSessionHandler,
        SessionsProcessor,
        ReconciliationSweep,
      ],
      exports: [AGENT_LINK, ReconciliationSweep, QueueModule],
    };
  }
}
