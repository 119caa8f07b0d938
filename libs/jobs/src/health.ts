import { Inject, Injectable, Module, OnApplicationShutdown, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheckResult, HealthCheckService, HealthIndicatorResult, HealthIndicatorService, TerminusModule } from '@nestjs/terminus';
import IORedis from 'ioredis';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { redisOptionsFromUrl } from './redis';

/** A dependency that does not answer within this is down: a probe must answer before the balancer's own timeout. */
const CHECK_TIMEOUT_MS = 2000;

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timed out')), ms);
    t.unref();
    p.then(resolve, reject).finally(() => clearTimeout(t));
  });
}

/**
 * What liveness and readiness are made of, for the API and the worker alike. Answers carry a
 * status per dependency and nothing else: never an error message (they name hosts and ports), a
 * URL or a version, since the routes are unauthenticated.
 */
@Injectable()
export class Readiness implements OnApplicationShutdown {
  private draining = false;
  /** Its own connection, failing at once while Redis is away (no offline queue), reconnecting by itself. */
  private readonly redisClient: IORedis;

  constructor(
    @Inject(RCFLOW_CONFIG) config: RcflowConfig,
    private readonly dataSource: DataSource,
    private readonly indicators: HealthIndicatorService,
  ) {
    this.redisClient = new IORedis({
      ...redisOptionsFromUrl(config.redis.url),
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectionName: `rcflow-${config.role}-health`,
      retryStrategy: (times) => Math.min(200 * times, 2000),
    });
    this.redisClient.on('error', () => undefined); // an outage is the check's answer, and is logged by the queues
    this.redisClient.connect().catch(() => undefined);
  }

  /** From now on readiness answers 503 (SIGTERM: the balancer should stop sending work here). */
  markDraining(): void {
    this.draining = true;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * Liveness: the process answers. It depends on nothing else (an outage elsewhere must never get
   * processes restarted) and stays 200 while draining, so it is answered here rather than by
   * terminus, which turns every check to 503 once shutdown hooks run.
   */
  live(): HealthCheckResult {
    const up = { process: { status: 'up' as const } };
    return { status: 'ok', info: up, error: {}, details: up };
  }

  async database(): Promise<HealthIndicatorResult<'database'>> {
    const check = this.indicators.check('database');
    try {
      await within(this.dataSource.query('SELECT 1'), CHECK_TIMEOUT_MS);
      return check.up();
    } catch {
      return check.down();
    }
  }

  /**
   * `optional`: Redis down is reported as `degraded` (overall 200 with `status: "degraded"`) —
   * the API keeps taking session requests into the outbox then; `required` (the worker, which
   * does nothing without Redis): down, 503.
   */
  async redis(mode: 'required' | 'optional'): Promise<HealthIndicatorResult<'redis'>> {
    const check = this.indicators.check('redis');
    try {
      await within(this.redisClient.ping(), CHECK_TIMEOUT_MS);
      return check.up();
    } catch {
      return mode === 'required' ? check.down() : check.degraded();
    }
  }

  /** Down once shutdown has begun. */
  notDraining(): HealthIndicatorResult<'draining'> {
    const check = this.indicators.check('draining');
    return this.draining ? check.down() : check.up();
  }

  onApplicationShutdown(): void {
    this.redisClient.disconnect();
  }
}

/**
 * Terminus' answer as it is, 200 or 503: `{ status, info, error, details }` with `status` "ok",
 * "degraded", "error" or "shutting_down" (a well-known shape balancers and dashboards read),
 * instead of the error filter's generic 503.
 */
export async function healthAnswer<T>(res: { status(code: number): unknown }, run: () => Promise<T>): Promise<T | object> {
  try {
    return await run();
  } catch (err) {
    if (!(err instanceof ServiceUnavailableException)) throw err;
    res.status(503);
    return err.getResponse() as object;
  }
}

/** Terminus (its failure log off: an outage is logged where it happens, not once per probe) and the checks. */
@Module({
  imports: [TerminusModule.forRoot({ logger: false })],
  providers: [Readiness],
  exports: [Readiness, TerminusModule],
})
export class HealthChecksModule {}

export { HealthCheckService };
