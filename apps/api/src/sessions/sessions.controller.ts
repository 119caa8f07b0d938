import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { z } from 'zod';
import type { PrincipalFacts } from '@rcflow/domain';
import { Requires } from '../auth/auth.guard';
import { Caller } from '../auth/caller.decorator';
import { NotFound } from '@rcflow/domain';
import { Zod, idParam, parseOrThrow } from '../common/validation';
import { SessionsService } from './sessions.service';
import { ViewerTokens } from '../agents/viewer-tokens.service';
import { SessionRequestBody, cancelSchema, idempotencyKeySchema, listSessionsQuery, sessionRequestSchema } from './sessions.schemas';
import { ApiErrors, ApiInput, ApiReturns } from '../common/api-docs';
import * as S from '../openapi-schemas';

@ApiTags('sessions')
@Controller('v1')
export class SessionsController {
  constructor(
    private readonly sessions: SessionsService,
    private readonly viewerTokens: ViewerTokens,
  ) {}

  @Post('sessions')
  @Requires('session.request')
  @ApiOperation({
    summary: 'Request a remote session',
    description:
      'Accepted requests are stored before the 202; eligibility runs asynchronously. The same Idempotency-Key with the same body returns the same session; with another body, 409.',
  })
  @ApiInput({
    headers: {
      'Idempotency-Key': idempotencyKeySchema
        .optional()
        .meta({ description: 'Retries with the same key and body answer the same session' }),
    },
  })
  @ApiReturns(S.sessionAccepted, {
    status: 202,
    headers: { Location: 'The session: /v1/sessions/{id}', 'Idempotent-Replayed': 'true when this answers a replayed Idempotency-Key' },
  })
  @ApiErrors(422)
  async create(
    @Caller() caller: PrincipalFacts,
    @Body(new Zod(sessionRequestSchema)) body: SessionRequestBody,
    @Headers('idempotency-key') rawKey: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ) {
    const key = rawKey === undefined ? null : parseOrThrow(idempotencyKeySchema, rawKey, 'Idempotency-Key');
    const { session, replayed } = await this.sessions.create(caller, body, key);
    const url = `/v1/sessions/${session.id}`;
    res.status(202).setHeader('Location', url);
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    return { id: session.id, state: session.state, url };
  }

  @Get('sessions')
  @Requires('session.read')
  @ApiOperation({ summary: 'List sessions in your scope (newest first, keyset pagination)' })
  @ApiReturns(S.pageOf(S.sessionView))
  list(@Caller() caller: PrincipalFacts, @Query(new Zod(listSessionsQuery, 'query')) q: z.infer<typeof listSessionsQuery>) {
    return this.sessions.list(caller, q);
  }

  @Get('sessions/:id')
  @ApiOperation({ summary: 'A session with its timeline and eligibility decision' })
  @ApiReturns(S.sessionDetail)
  async get(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    const session = await this.sessions.get(caller, p.id);
    const [timeline, decision, notice] = await Promise.all([
      this.sessions.timeline(p.id),
      this.sessions.decision(p.id),
      this.sessions.notice(p.id),
    ]);
    return { ...session, timeline, decision, notice };
  }

  @Get('sessions/:id/decision')
  @ApiOperation({ summary: 'Every eligibility check with its outcome and detail: why a session was denied' })
  @ApiReturns(S.sessionDecision)
  async decision(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    const session = await this.sessions.get(caller, p.id);
    const decision = await this.sessions.decision(p.id);
    if (!decision) throw new NotFound('decision for session', `${p.id} (state ${session.state}: not evaluated yet)`);
    return { sessionId: p.id, state: session.state, ...decision };
  }

  @Post('sessions/:id/cancel')
  @HttpCode(200)
  @ApiOperation({ summary: 'Cancel a session that has not started, or end an active one' })
  @ApiReturns(S.sessionView)
  async cancel(
    @Caller() caller: PrincipalFacts,
    @Param(new Zod(idParam, 'path')) p: { id: string },
    @Body(new Zod(cancelSchema)) body: z.infer<typeof cancelSchema>,
  ) {
    return this.sessions.cancel(caller, p.id, body.reason ?? null);
  }

  @Post('sessions/:id/viewer-token')
  @ApiOperation({ summary: 'A short-lived, single-use token for the viewer to connect to its active session (shown once)' })
  @ApiReturns(S.viewerToken)
  async viewerToken(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    const session = await this.sessions.get(caller, p.id);
    return this.viewerTokens.issue(caller.id, session);
  }

  @Post('eligibility/check')
  @HttpCode(200)
  @Requires('session.request')
  @ApiOperation({ summary: 'Dry run of the ten eligibility checks; nothing is stored or enqueued' })
  @ApiReturns(S.eligibilityDecision)
  @ApiErrors(422)
  check(@Caller() caller: PrincipalFacts, @Body(new Zod(sessionRequestSchema)) body: SessionRequestBody) {
    return this.sessions.dryRun(caller, body);
  }
}
