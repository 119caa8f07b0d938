import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { Forbidden, Unauthenticated, scopeOf } from '@rcflow/domain';
import { bearerOf, metricsTokenMatches } from '@rcflow/observability';
import { AuthGuard, type AuthedRequest } from '../auth/auth.guard';

/**
 * Who may scrape `GET /metrics`: Prometheus with `Authorization: Bearer <METRICS_TOKEN>` (when one
 * is configured; compared in constant time), or a caller whose API key holds admin.read over all
 * collections (the metrics cover every collection). The route is public to the global AuthGuard,
 * which only counts it against the caller's address; the key is checked here, the same way.
 */
@Injectable()
export class MetricsGuard implements CanActivate {
  constructor(
    private readonly auth: AuthGuard,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const req = ctx.switchToHttp().getRequest<AuthedRequest>();
    const bearer = bearerOf(req.headers.authorization);
    const token = this.config.metrics.token;
    if (token !== null && bearer !== null && metricsTokenMatches(bearer, token)) return true;
    const apiKey = req.headers['x-api-key'];
    const raw = bearer ?? (typeof apiKey === 'string' ? apiKey : null);
    if (raw === null) {
      throw new Unauthenticated(
        `GET /metrics needs an API key with admin.read over all collections${token === null ? '' : ', or METRICS_TOKEN as a bearer token'}`,
      );
    }
    const verified = await this.auth.verifyKey(raw);
    if (!verified) throw new Unauthenticated('the API key (or metrics token) is unknown, revoked or expired');
    req.principal = verified.principal;
    if (scopeOf(verified.principal.grants, 'admin.read') !== null) {
      throw new Forbidden(`${verified.principal.name} lacks admin.read over all collections, which the metrics cover`);
    }
    return true;
  }
}
