import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { pinoHttp, type HttpLogger } from 'pino-http';

/** A request id a caller may choose: at most 128 of these characters; anything else gets a new one. */
const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;
/** Routes polled by machines (balancers, Prometheus): their lines only at debug. */
const QUIET = /^\/(?:health(?:[/?]|$)|metrics(?:[/?]|$))/;
const MAX_PATH = 512;

/** The caller's X-Request-Id when it is one we accept, else a new UUID. */
export function requestIdFor(header: string | string[] | undefined): string {
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
}

interface LoggedRequest extends IncomingMessage {
  originalUrl?: string;
  principal?: { id: string };
}

/** The path without its query (which may carry anything), cut to a sane length. */
function pathOf(req: LoggedRequest): string {
  const url = req.originalUrl ?? req.url ?? '';
  const q = url.indexOf('?');
  return (q === -1 ? url : url.slice(0, q)).slice(0, MAX_PATH);
}

function accessLine(req: LoggedRequest, res: ServerResponse, durationMs: number): Record<string, unknown> {
  return {
    method: req.method,
    path: pathOf(req),
    status: res.statusCode,
    durationMs,
    principalId: req.principal?.id,
  };
}

/**
 * The API's first middleware: gives every request an id (the caller's valid X-Request-Id, or a
 * new UUID), echoes it as X-Request-Id, binds it to the request's logger (`req.log`, and `req.id`
 * for the error filter's lines), and logs one access line
 * when the response is done: method, path (no query), status, duration, request id, and the
 * principal when authenticated. No headers and no bodies are logged; /health* and /metrics at debug.
 */
export function accessLog(logger: Logger): HttpLogger {
  return pinoHttp({
    logger,
    quietReqLogger: true,
    quietResLogger: true,
    customAttributeKeys: { reqId: 'reqId' },
    genReqId: (req, res) => {
      const id = requestIdFor(req.headers['x-request-id']);
      res.setHeader('X-Request-Id', id);
      return id;
    },
    customLogLevel: (req, res, err) => {
      if (QUIET.test(pathOf(req))) return 'debug';
      return err || res.statusCode >= 500 ? 'warn' : 'info';
    },
    customSuccessObject: (req, res, value) => accessLine(req, res, (value as { responseTime: number }).responseTime),
    customErrorObject: (req, res, _err, value) => accessLine(req, res, (value as { responseTime: number }).responseTime),
    customSuccessMessage: (req, res) => (res.writableEnded ? 'request' : 'request aborted'),
    customErrorMessage: () => 'request failed',
  });
}
