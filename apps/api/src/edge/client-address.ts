import type { IncomingMessage } from 'node:http';
import { request as expressRequest } from 'express';
import type { Express } from 'express';

/**
 * The client's address for a request Express did not route (a WebSocket upgrade), by the very
 * rule Express applies to `req.ip` (its getter, run on this request): X-Forwarded-For is followed
 * only through the proxies the app's `trust proxy` setting names (TRUST_PROXY).
 */
export function clientAddress(req: IncomingMessage, app: Express): string {
  const view = Object.assign(Object.create(req) as IncomingMessage, { app });
  const ip: unknown = Reflect.get(expressRequest, 'ip', view);
  return typeof ip === 'string' ? ip : (req.socket.remoteAddress ?? 'unknown');
}
