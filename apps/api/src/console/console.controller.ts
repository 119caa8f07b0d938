import { Body, Controller, Get, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { CookieOptions, Request, Response } from 'express';
import { z } from 'zod';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { Forbidden, PrincipalFacts, Unauthenticated } from '@rcflow/domain';
import { AuthGuard, Public } from '../auth/auth.guard';
import { Caller } from '../auth/caller.decorator';
import { whoAmI } from '../auth/whoami.controller';
import { Zod } from '../common/validation';
import { RateBudgeted } from '../edge/rate-limits';
import {
  CONSOLE_COOKIE,
  CONSOLE_CSRF_HEADER,
  CONSOLE_CSRF_VALUE,
  CONSOLE_IDLE_SECONDS,
  CONSOLE_MAX_SECONDS,
  ConsoleSessions,
  cookieValue,
} from './console-sessions';

const signInSchema = z.strictObject({ apiKey: z.string().min(1).max(200) });

/** Who the console is signed in as (GET /v1/whoami's answer), and for how long it stays signed in idle. */
const whoami = (p: PrincipalFacts) => ({ ...whoAmI(p), idleSeconds: CONSOLE_IDLE_SECONDS });

/**
 * The web console's sign-in and sign-out: an API key exchanged for an opaque session cookie
 * (httpOnly, SameSite=Strict, Secure over https). Kept out of the OpenAPI document: these are the
 * console's own routes, for a browser, not part of the API integrations call.
 */
@ApiExcludeController()
@Controller('console/session')
export class ConsoleController {
  constructor(
    private readonly guard: AuthGuard,
    private readonly sessions: ConsoleSessions,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  @Post()
  @Public()
  @RateBudgeted('signin')
  @HttpCode(201)
  async signIn(
    @Req() req: Request,
    @Body(new Zod(signInSchema)) body: z.infer<typeof signInSchema>,
    @Res({ passthrough: true }) res: Response,
  ) {
    // Login CSRF: another site must not sign a browser in under its own key.
    requireCsrfHeader(req);
    const verified = await this.guard.verifyKey(body.apiKey.trim());
    if (!verified) throw new Unauthenticated('the API key is unknown, revoked or expired');
    const sid = await this.sessions.create(verified.keyId, verified.principal.id);
    const previous = cookieValue(req.headers.cookie, CONSOLE_COOKIE);
    if (previous) await this.sessions.destroy(previous);
    res.cookie(CONSOLE_COOKIE, sid, { ...this.cookieOptions(req), maxAge: CONSOLE_MAX_SECONDS * 1000 });
    return whoami(verified.principal);
  }

  /** Who is signed in (401 when nobody is: the console then shows its sign-in form). */
  @Get()
  current(@Caller() caller: PrincipalFacts) {
    return whoami(caller);
  }

  /** Ends the session on the server and clears the cookie; answers 204 whether or not one was open. */
  @Post('logout')
  @Public()
  @HttpCode(204)
  async signOut(@Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<void> {
    requireCsrfHeader(req);
    const sid = cookieValue(req.headers.cookie, CONSOLE_COOKIE);
    if (sid) await this.sessions.destroy(sid);
    res.clearCookie(CONSOLE_COOKIE, this.cookieOptions(req));
  }

  private cookieOptions(req: Request): CookieOptions {
    // Secure when the browser reached us over https (directly, or through a TRUST_PROXY proxy) or PUBLIC_URL says so.
    const secure = req.secure || (this.config.http.publicUrl?.startsWith('https:') ?? false);
    return { httpOnly: true, sameSite: 'strict', secure, path: '/' };
  }
}

function requireCsrfHeader(req: Request): void {
  if (req.headers[CONSOLE_CSRF_HEADER] !== CONSOLE_CSRF_VALUE) {
    throw new Forbidden(`the web console's requests must carry the header X-Requested-With: ${CONSOLE_CSRF_VALUE}`);
  }
}
