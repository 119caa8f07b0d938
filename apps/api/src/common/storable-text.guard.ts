import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { ValidationFailed, findUnstorableText } from '@rcflow/domain';

/**
 * The HTTP boundary of the text rule (`findUnstorableText` in libs/domain): every route's parsed
 * body, query string and path parameters are checked before the route runs, so a new route cannot
 * forget it. NUL or a lone UTF-16 surrogate anywhere is a 400 naming the field; nothing reaches
 * PostgreSQL (which refuses NUL, and would store U+FFFD in place of a lone surrogate while the
 * audit hash covers the original).
 */
@Injectable()
export class StorableTextGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    if (context.getType() !== 'http') return true;
    const req = context.switchToHttp().getRequest<Request>();
    for (const [what, value] of [
      ['body', req.body],
      ['query', req.query],
      ['path', req.params],
    ] as const) {
      // A raw body (ticket webhooks) is bytes; whoever parses it checks the text it keeps.
      if (Buffer.isBuffer(value)) continue;
      const bad = findUnstorableText(value, what);
      if (bad) throw new ValidationFailed(`invalid ${what}: ${bad.path}: ${bad.problem}`, [{ path: bad.path, message: bad.problem }]);
    }
    return true;
  }
}
