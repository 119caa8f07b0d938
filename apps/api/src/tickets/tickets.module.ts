import { Module } from '@nestjs/common';
import { RCFLOW_CONFIG, type RcflowConfig } from '@rcflow/config';
import { SessionsCoreModule } from '@rcflow/sessions';
import { SecretBox } from '@rcflow/tickets';
import { AdminConnection } from '../admin/admin-context';
import { SessionsService } from '../sessions/sessions.service';
import { TICKET_SECRET_BOX, TicketHooks } from './ticket-hooks.service';
import { TicketHooksController } from './ticket-hooks.controller';
import { ExternalIdsController } from './external-ids.controller';
import { ExternalIdsService } from './external-ids.service';
import { TicketIntegrationsController } from './ticket-integrations.controller';
import { TicketIntegrationsService } from './ticket-integrations.service';
import { TicketWritebacksController } from './ticket-writebacks.controller';
import { TicketWritebacksService } from './ticket-writebacks.service';

/** Helpdesk ticket triggers: integrations, their webhook, delivery log and the notes written back. */
@Module({
  imports: [SessionsCoreModule],
  controllers: [TicketIntegrationsController, TicketWritebacksController, TicketHooksController, ExternalIdsController],
  providers: [
    AdminConnection,
    TicketHooks,
    TicketIntegrationsService,
    TicketWritebacksService,
    ExternalIdsService,
    SessionsService,
    {
      provide: TICKET_SECRET_BOX,
      inject: [RCFLOW_CONFIG],
      useFactory: (config: RcflowConfig) => (config.tickets.secretsKey ? new SecretBox(config.tickets.secretsKey) : null),
    },
  ],
})
export class TicketsModule {}
