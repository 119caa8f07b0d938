import { ArgumentsHost, Catch, ExceptionFilter, HttpException } from '@nestjs/common';
import type { Request, Response } from 'express';
import { DomainError } from '@rcflow/domain';
import { contextLogger } from '@rcflow/observability';

/** The one JSON error shape: { error: { status, code, message, details? } }. */
@Catch()
export class ErrorFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    if (res.headersSent) {
      // A streamed answer failed midway: the status is gone; cutting the connection is the signal.
      logUnexpected(host.switchToHttp().getRequest<Request>(), exception, 'a response failed while streaming');
      res.destroy();
      return;
    }
    let status = 500;
    let code = 'internal_error';
    let message = 'internal error';
    let details: unknown;
    if (exception instanceof DomainError) {
      ({ status, code, message, details } = exception);
      if (status === 429) res.setHeader('Retry-After', String((details as { retryAfterSeconds: number }).retryAfterSeconds));
    } else if (exception instanceof HttpException) {
      status = exception.getStatus();
      const body = exception.getResponse();
      message = typeof body === 'string' ? body : String((body as { message?: string | string[] }).message ?? exception.message);
      code = status === 404 ? 'not_found' : status === 413 ? 'payload_too_large' : 'http_error';
    } else if (isBodyParserError(exception)) {
      status = exception.status;
      code = exception.type === 'entity.too.large' ? 'payload_too_large' : 'malformed_body';
      message = exception.type === 'entity.too.large' ? 'request body is too large' : 'request body is not valid JSON';
    } else {
      logUnexpected(host.switchToHttp().getRequest<Request>(), exception, 'unexpected error');
    }
    res.status(status).json({ error: { status, code, message, ...(details === undefined ? {} : { details }) } });
  }
}

/** An error no rule maps (a 500): logged with the request's id, which the caller has in X-Request-Id. */
function logUnexpected(req: Request, exception: unknown, msg: string): void {
  const err = exception instanceof Error ? exception : new Error(String(exception));
  contextLogger('HTTP').error({ reqId: req.id, method: req.method, path: req.path, err }, msg);
}

function isBodyParserError(e: unknown): e is { status: number; type: string } {
  const x = e as { status?: unknown; type?: unknown } | null | undefined;
  return typeof x?.status === 'number' && x.status >= 400 && x.status < 500 && typeof x.type === 'string';
}
