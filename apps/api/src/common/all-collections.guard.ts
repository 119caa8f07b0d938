import { CanActivate, ExecutionContext } from '@nestjs/common';
import { Forbidden, Permission, scopeOf } from '@rcflow/domain';
import type { AuthedRequest } from '../auth/auth.guard';

/**
 * For routes whose answer covers every collection at once (the audit trail's verification): the
 * caller needs `permission` over all collections, not only somewhere. Runs after the global
 * AuthGuard, which has authenticated the caller and checked `permission` somewhere.
 * Use as `@UseGuards(allCollections('audit.read'))`.
 */
export function allCollections(permission: Permission): CanActivate {
  return {
    canActivate(ctx: ExecutionContext): boolean {
      // Set by AuthGuard on every route that is not public.
      const { principal } = ctx.switchToHttp().getRequest<Partial<AuthedRequest>>();
      if (!principal || scopeOf(principal.grants, permission) !== null) {
        throw new Forbidden(
          `${principal?.name ?? 'the caller'} holds ${permission} over some collections only; this covers every collection and needs it over all`,
        );
      }
      return true;
    },
  };
}
