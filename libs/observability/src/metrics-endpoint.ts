import { Controller, DynamicModule, Get, Inject, Module, Req, Res } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { renderMetrics } from './metrics';

/** Whether `presented` equals the configured metrics token; constant time whatever either length. */
export function metricsTokenMatches(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The bearer credential of an Authorization header, or null. */
export function bearerOf(header: string | string[] | undefined): string | null {
  if (typeof header !== 'string' || !header.startsWith('Bearer ')) return null;
  const value = header.slice(7).trim();
  return value === '' ? null : value;
}

function refuse(res: ServerResponse, status: 401 | 403, message: string): void {
  const body = JSON.stringify({ error: { status, code: status === 401 ? 'unauthenticated' : 'forbidden', message } });
  res.statusCode = status;
  if (status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="rcflow metrics"');
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

/**
 * Answers a scrape on a plain Node HTTP server (a worker's operations listener): the registry in
 * Prometheus' text format to a caller presenting `Authorization: Bearer <METRICS_TOKEN>`; 401
 * otherwise, and 403 for everyone while no token is configured (the worker has no API keys).
 */
export async function serveMetrics(req: IncomingMessage, res: ServerResponse, token: string | null): Promise<void> {
  if (token === null) {
    refuse(res, 403, 'set METRICS_TOKEN to scrape this process');
    return;
  }
  const presented = bearerOf(req.headers.authorization);
  if (presented === null || !metricsTokenMatches(presented, token)) {
    refuse(res, 401, 'GET /metrics needs Authorization: Bearer <METRICS_TOKEN>');
    return;
  }
  const { contentType, body } = await renderMetrics();
  res.statusCode = 200;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

const METRICS_TOKEN = Symbol('METRICS_TOKEN');

/** `GET /metrics` for a process without API keys (the worker's operations listener): METRICS_TOKEN only. */
@Controller('metrics')
export class TokenMetricsController {
  constructor(@Inject(METRICS_TOKEN) private readonly token: string | null) {}

  @Get()
  async metrics(@Req() req: IncomingMessage, @Res() res: ServerResponse): Promise<void> {
    await serveMetrics(req, res, this.token);
  }
}

/**
 * Mount in a Nest HTTP application without API keys (the worker's operations listener):
 * `imports: [MetricsModule.forRoot(config.metrics.token)]` serves `GET /metrics`.
 */
@Module({})
export class MetricsModule {
  static forRoot(token: string | null): DynamicModule {
    return {
      module: MetricsModule,
      controllers: [TokenMetricsController],
      providers: [{ provide: METRICS_TOKEN, useValue: token }],
    };
  }
}
