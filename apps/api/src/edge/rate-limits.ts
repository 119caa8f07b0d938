import { Inject, Injectable, Logger, SetMetadata } from '@nestjs/common';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { RCFLOW_CONFIG, RateLimitBudgets, RcflowConfig } from '@rcflow/config';
import { TooManyRequests } from '@rcflow/domain';
import { EDGE_REDIS, EdgeRedis } from './edge-redis';

export type RateBudget = keyof RateLimitBudgets;

export const RATE_BUDGET = 'rcflow:rate-budget';
/**
 * A public route counted against a budget of its own, per client address, instead of the general
 * per-address budget (health, agent enrolment, ticket webhooks).
 */
export const RateBudgeted = (budget: Exclude<RateBudget, 'principal' | 'address'>) => SetMetadata(RATE_BUDGET, budget);

/** How often, at most, the fall-back to per-process limits is logged. */
const FALLBACK_LOG_MS = 60_000;

/**
 * Rate limits shared by every API process: a fixed one-minute window per budget and key
 * (rate-limiter-flexible on Redis, an atomic INCR with a TTL, so the window starts at a caller's
 * first request and a flood of other keys never touches it). When Redis cannot answer, each
 * process falls back to the same limits in its own memory (logged): intake keeps working while
 * Redis is down, as the outbox lets it, and a flood is still bounded, by N processes × the limit.
 */
@Injectable()
export class RateLimits {
  private readonly logger = new Logger('RateLimits');
  private readonly limiters: Record<RateBudget, RateLimiterRedis>;
  private lastFallbackLog = 0;

  constructor(@Inject(RCFLOW_CONFIG) config: RcflowConfig, @Inject(EDGE_REDIS) redis: EdgeRedis) {
    const budgets = config.http.rateLimits;
    const make = (budget: RateBudget): RateLimiterRedis => {
      const opts = { points: budgets[budget], duration: 60, keyPrefix: `${config.redis.prefix}:rl:${budget}` };
      return new RateLimiterRedis({
        ...opts,
        storeClient: redis.client,
        rejectIfRedisNotReady: true,
        insuranceLimiter: new FallbackLimiter(opts, () => this.fellBack()),
      });
    };
    this.limiters = {
      principal: make('principal'),
      address: make('address'),
      health: make('health'),
      enrol: make('enrol'),
      webhook: make('webhook'),
      upgrade: make('upgrade'),
      signin: make('signin'),
    };
  }

  /** Counts one request of `key` against `budget`; throws TooManyRequests (429, Retry-After) past it. */
  async consume(budget: RateBudget, key: string): Promise<void> {
    try {
      await this.limiters[budget].consume(key);
    } catch (err) {
      if (err instanceof RateLimiterRes) throw new TooManyRequests(Math.max(1, Math.ceil(err.msBeforeNext / 1000)));
      throw err;
    }
  }

  private fellBack(): void {
    const now = Date.now();
    if (now - this.lastFallbackLog < FALLBACK_LOG_MS) return;
    this.lastFallbackLog = now;
    this.logger.warn('Redis is unreachable: rate limits are counted per process until it is back');
  }
}

/** The per-process limiter used while Redis is unreachable; tells its owner each time it is used. */
class FallbackLimiter extends RateLimiterMemory {
  constructor(
    opts: { points: number; duration: number; keyPrefix: string },
    private readonly onUse: () => void,
  ) {
    super(opts);
  }

  override consume(key: string | number, points?: number, options?: Record<string, unknown>): Promise<RateLimiterRes> {
    this.onUse();
    return super.consume(key, points, options);
  }
}
