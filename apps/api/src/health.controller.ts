import { Controller, Get, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import type { Response } from 'express';
import { DataSource } from 'typeorm';
import { Readiness, healthAnswer } from '@rcflow/jobs';
import { Public } from './auth/auth.guard';
import { RateBudgeted } from './edge/rate-limits';
import { ApiReturns } from './common/api-docs';
import * as S from './openapi-schemas';

/**
 * Unauthenticated on purpose, for load balancers and orchestrators, on the per-address health
 * budget; the answers say up/down per dependency and nothing else (no messages, hosts or versions).
 */
@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly dataSource: DataSource,
    private readonly health: HealthCheckService,
    private readonly checks: Readiness,
  ) {}

  /** The first health route, kept as it was for the scripts and tests that call it: the process and its database. */
  @Get()
  @Public()
  @RateBudgeted('health')
  @ApiOperation({ summary: 'Liveness and database reachability (kept for compatibility; prefer /health/live and /health/ready)' })
  @ApiReturns(S.healthView)
  async legacy() {
    await this.dataSource.query('SELECT 1');
    return { status: 'ok' };
  }

  /** 200 while the process answers; depends on nothing, so an outage elsewhere never gets the process restarted. */
  @Get('live')
  @Public()
  @RateBudgeted('health')
  @HealthCheck()
  @ApiOperation({ summary: 'Liveness: the process answers (no dependency is checked)' })
  live() {
    return this.checks.live();
  }

  /**
   * Whether a load balancer should send this instance requests. PostgreSQL down: 503 (nothing
   * works without it). After SIGTERM: 503 at once (the shutdown gate lets this route through so
   * that it says why), while in-flight requests finish. Redis down: still 200, with
   * `status: "degraded"` and `details.redis.status: "degraded"` — the API keeps accepting session
   * requests into the PostgreSQL outbox, which the relay hands to the queues once Redis is back;
   * and every API instance shares the one Redis, so failing readiness on it would take all of them
   * out of rotation at once, turning a degraded service into a full outage. Alert on `degraded`.
   */
  @Get('ready')
  @Public()
  @RateBudgeted('health')
  @HealthCheck()
  @ApiOperation({ summary: 'Readiness: PostgreSQL answers, not shutting down; Redis down is reported as degraded (still 200)' })
  ready(@Res({ passthrough: true }) res: Response) {
    return healthAnswer(res, () =>
      this.health.check([() => this.checks.database(), () => this.checks.redis('optional'), () => this.checks.notDraining()]),
    );
  }
}
