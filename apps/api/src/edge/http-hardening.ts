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
  // upgrade-insecure-requests makes browsers fetch the Swagger page's scripts over https, which an
  // API served over plain http (the compose file's, the demo's) does not answer: kept only when
  // PUBLIC_URL says the API is reached over https.
  const overHttps = config.http.publicUrl?.startsWith('https:') ?? false;
  app.use(helmet({ contentSecurityPolicy: { directives: { upgradeInsecureRequests: overHttps ? [] : null } } }));
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
