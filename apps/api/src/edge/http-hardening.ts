import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';
import type { RcflowConfig } from '@rcflow/config';

/**
 * What every response carries, whatever answers it (a route, the error filter, the shutdown gate,
 * the Swagger page): helmet's headers, and `Cache-Control: no-store`, since API answers are
 * per caller and several carry secrets (API keys, enrolment tokens, device credentials, viewer
 * tokens) — one rule for all cannot be forgotten on a new route. Installed before anything else.
 * X-Forwarded-For is believed only from TRUST_PROXY's proxies; CORS only for CORS_ORIGINS.
 */
export function hardenHttp(app: NestExpressApplication, config: RcflowConfig): void {
  app.use(helmet());
  app.use((_req: Request, res: Response, next: NextFunction) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  app.set('trust proxy', config.http.trustProxy.length ? config.http.trustProxy : false);
  if (config.http.corsOrigins.length) {
    app.enableCors({
      origin: config.http.corsOrigins,
      methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'X-Api-Key'],
      exposedHeaders: ['Retry-After'],
      credentials: false,
      maxAge: 600,
    });
  }
}
