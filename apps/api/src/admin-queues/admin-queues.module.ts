import { DynamicModule, Module } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { BullBoardModule } from '@bull-board/nestjs';
import { ExpressAdapter } from '@bull-board/express';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import type { NextFunction, Request, Response } from 'express';
import { Forbidden, PERMISSIONS, type PrincipalFacts, scopeOf } from '@rcflow/domain';
import { QueueName } from '@rcflow/jobs';
import { AuthGuard } from '../auth/auth.guard';

/** Where the queue dashboard is served (its page, its assets and its JSON API under /api). */
export const ADMIN_QUEUES_ROUTE = '/admin/queues';

/** full_administrator over all collections: every permission, unrestricted. */
export function isFullAdministrator(p: PrincipalFacts): boolean {
  return PERMISSIONS.every((permission) => scopeOf(p.grants, permission) === null);
}

/**
 * Bull Board's routes are Express middleware, not Nest routes: the global AuthGuard never sees
 * them, so this gate stands in front of all of them. It authenticates like the guard (an API key,
 * or the web console's cookie — a browser navigating to the page cannot send a key) and admits
 * full administrators only: the board shows every job's data and can retry, promote, clean and
 * empty queues. Its writes (PUT/POST/DELETE from its own page, which cannot add the console's
 * X-Requested-With header) are accepted with the cookie only when the browser vouches that they
 * come from this origin (Sec-Fetch-Site / Origin): with the cookie's SameSite=Strict, a page of
 * another site can neither send the cookie nor pass that check. Errors keep the API's error shape.
 */
export function adminQueuesGate(guard: () => AuthGuard) {
  return async (req: Request, _res: Response, next: NextFunction): Promise<void> => {
    const address = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const principal = await guard().authenticate(req, address, { sameOriginWrites: true });
    if (!isFullAdministrator(principal)) {
      throw new Forbidden(`${principal.name} is not a full administrator over all collections; the queue dashboard is for them only`);
    }
    next();
  };
}

/**
 * The queue dashboard (Bull Board) at /admin/queues for every BullMQ queue of QueueName, in the
 * API process (with the workers in it or not: it reads the queues in Redis either way). Kept out
 * of the OpenAPI document: it is a page for people, not part of the API.
 */
@Module({})
export class AdminQueuesModule {
  static forRoot(): DynamicModule {
    return {
      module: AdminQueuesModule,
      imports: [
        BullBoardModule.forRootAsync({
          inject: [ModuleRef],
          // The guard is the API's one instance (its key cache hears revocations), found when the first request comes.
          useFactory: (moduleRef: ModuleRef) => {
            let guard: AuthGuard | undefined;
            const find = (): AuthGuard => {
              guard ??= moduleRef.get(AuthGuard, { strict: false });
              if (!guard) throw new Error('AuthGuard is not provided: the queue dashboard stays closed');
              return guard;
            };
            return {
              route: ADMIN_QUEUES_ROUTE,
              adapter: ExpressAdapter,
              boardOptions: { uiConfig: { boardTitle: 'rcflow queues' } },
              middleware: adminQueuesGate(find),
            };
          },
        }),
        BullBoardModule.forFeature(...Object.values(QueueName).map((name) => ({ name, adapter: BullMQAdapter }))),
      ],
    };
  }
}
