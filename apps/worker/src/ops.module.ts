import { Controller, Get, Module, Res } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import type { Response } from 'express';
import { HealthChecksModule, Readiness, healthAnswer } from '@rcflow/jobs';

/**
 * The worker's liveness and readiness. No authentication: the listener is on loopback unless
 * WORKER_HTTP_HOST says otherwise, and the answers say up/down per dependency and nothing else.
 */
@Controller('health')
export class WorkerHealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly checks: Readiness,
  ) {}

  @Get('live')
  @HealthCheck({ swaggerDocumentation: false, noCache: true })
  live() {
    return this.checks.live();
  }

  /** PostgreSQL and Redis (the worker does nothing without either), and not draining (503 from SIGTERM on). */
  @Get('ready')
  @HealthCheck({ swaggerDocumentation: false, noCache: true })
  ready(@Res({ passthrough: true }) res: Response) {
    return healthAnswer(res, () =>
      this.health.check([() => this.checks.database(), () => this.checks.redis('required'), () => this.checks.notDraining()]),
    );
  }
}

/**
 * What the worker's ops HTTP listener (WORKER_HTTP_PORT, WORKER_HTTP_HOST) serves besides
 * `MetricsModule` (GET /metrics, imported next to it in main.ts): its controllers are mounted on
 * this listener, its providers see the worker's (queues, DataSource).
 */
@Module({
  imports: [HealthChecksModule],
  controllers: [WorkerHealthController],
})
export class WorkerOpsModule {}
