import { Controller, HttpCode, Param, Post, Req, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Public } from '../auth/auth.guard';
import { Zod } from '../common/validation';
import { RateBudgeted } from '../edge/rate-limits';
import { TicketHooks } from './ticket-hooks.service';
import { z } from 'zod';
import { uuid } from '../common/validation';
import { ApiInput, ApiReturns } from '../common/api-docs';
import * as S from '../openapi-schemas';

const hookParam = z.strictObject({ integrationId: uuid });

/** Where ticket systems deliver: no API key, the signature over the raw body is the credential. */
@ApiTags('ticket integrations')
@Controller('v1/hooks')
export class TicketHooksController {
  constructor(private readonly hooks: TicketHooks) {}

  @Post(':integrationId')
  @Public()
  @RateBudgeted('webhook')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Receive a ticket system’s delivery',
    description:
      'Signed per vendor (Jira X-Hub-Signature, GitHub X-Hub-Signature-256, Zendesk X-Zendesk-Webhook-Signature with its timestamp; others X-Rcflow-Signature + X-Rcflow-Timestamp, or X-Rcflow-Token). 202 with the delivery id and what became of it; a redelivery gets the first answer. 401 bad signature, 404 unknown or disabled integration, 413 too large, 415 not JSON, 400 malformed JSON.',
  })
  @ApiInput({
    rawBody: {
      contentType: 'application/json',
      schema: { type: 'object', description: "The ticket system's own event (verified on the raw bytes)" },
      example: { webhookEvent: 'jira:issue_updated', issue: { key: 'IT-1042' } },
    },
  })
  @ApiReturns(S.hookAnswer)
  // Refused deliveries are logged and answered in the delivery's shape (404 and path errors in the error shape).
  @ApiReturns(S.hookAnswer, { status: 401, description: 'Bad or missing signature (the delivery is logged)' })
  @ApiReturns(S.hookAnswer, { status: 415, description: 'The body is not application/json' })
  @ApiReturns(
    { oneOf: [{ $ref: '#/components/schemas/HookAnswer' }, { $ref: '#/components/schemas/Error' }] },
    { status: 400, description: 'The body is not valid JSON (a delivery answer), or the integration id is not a UUID (an error)' },
  )
  async receive(
    @Param(new Zod(hookParam, 'path')) p: z.infer<typeof hookParam>,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ) {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const answer = await this.hooks.receive(p.integrationId, raw, req.headers);
    res.status(answer.status);
    return answer.body;
  }
}
