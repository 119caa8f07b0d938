import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { ConfigModule, RcflowConfig } from '@rcflow/config';
import { DatabaseModule } from '@rcflow/database';
import { HealthChecksModule, QueueModule } from '@rcflow/jobs';
import { WorkerModule } from '@rcflow/workflow';
import { SessionsCoreModule } from '@rcflow/sessions';
import { AccessReviewModule } from './access-review/access-review.module';
import { AdminModule } from './admin/admin.module';
import { AdminQueuesModule } from './admin-queues/admin-queues.module';
import { AgentsModule } from './agents/agents.module';
import { TicketsModule } from './tickets/tickets.module';
import { SchedulesModule } from './schedules/schedules.module';
import { WebhooksModule } from './webhooks/webhooks.module';
import { AuditCheckpoints } from './audit/audit-checkpoints';
import { AuditExportService } from './audit/audit-export.service';
import { AuditQueryService } from './audit/audit-query.service';
import { AuditController } from './audit/audit.controller';
import { VerifyLock } from './audit/verify-lock';
import { AuthGuard } from './auth/auth.guard';
import { WhoAmIController } from './auth/whoami.controller';
import { ErrorFilter } from './common/exception.filter';
import { EdgeModule } from './edge/edge.module';
import { StorableTextGuard } from './common/storable-text.guard';
import { HealthController } from './health.controller';
import { ConsoleController } from './console/console.controller';
import { ShutdownGate } from './shutdown-gate';
import { EventsController } from './events/events.controller';
import { EventsHub } from './events/events-hub';
import { EventsService } from './events/events.service';
import { SessionsController } from './sessions/sessions.controller';
import { SessionsService } from './sessions/sessions.service';
import { ReportsController } from './reports/reports.controller';
import { ReportsService } from './reports/reports.service';
import { ReportRollupService } from './reports/report-rollup.service';
import { MetricsController } from './metrics/metrics.controller';
import { MetricsSources } from './metrics/metrics-sources';

/** The HTTP API; with `withWorker` it also runs the workers in this process (the embedded mode). */
@Module({})
export class ApiModule {
  static forRoot(config: RcflowConfig, options: { withWorker: boolean }): DynamicModule {
    return {
      module: ApiModule,
      imports: [
        // Binds each request's logger (main.ts' access log made it, with the request id) to what is logged while it runs.
        ConfigModule.forRoot(config),
        EdgeModule.forRoot(config),
        DatabaseModule,
        options.withWorker ? WorkerModule.forRoot(config) : QueueModule.forRoot(config),
        SessionsCoreModule,
        AdminModule,
        TicketsModule,
        SchedulesModule,
        AgentsModule.forRoot(config),
        AccessReviewModule,
        HealthChecksModule,
        AdminQueuesModule.forRoot(),
        WebhooksModule,
      ],
      controllers: [
        SessionsController,
        AuditController,
        ReportsController,
        HealthController,
        ConsoleController,
        EventsController,
        MetricsController,
        WhoAmIController,
      ],
      providers: [
        SessionsService,
        AuditExportService,
        AuditQueryService,
        AuditCheckpoints,
        VerifyLock,
        ReportsService,
        ReportRollupService,
        ShutdownGate,
        EventsHub,
        EventsService,
        MetricsSources,
        // Before authentication: text PostgreSQL cannot store is refused whoever sends it.
        // Authentication and rate limits first: refused text is counted against the caller's budget too.
        // One instance, one key cache: the console's sign-in verifies keys through the guard too.
        AuthGuard,
        { provide: APP_GUARD, useExisting: AuthGuard },
        { provide: APP_GUARD, useClass: StorableTextGuard },
        { provide: APP_FILTER, useClass: ErrorFilter },
      ],
    };
  }
}
