import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { PrincipalFacts } from '@rcflow/domain';
import type { AuthedRequest } from './auth.guard';

/** The authenticated principal making the request. */
export const Caller = createParamDecorator(
  (_: unknown, ctx: ExecutionContext): PrincipalFacts => ctx.switchToHttp().getRequest<AuthedRequest>().principal,
);
