import { Body, Controller, Delete, Get, HttpCode, Param, Post, Req } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { z } from 'zod';
import type { PrincipalFacts } from '@rcflow/domain';
import { EnrolRequest, enrolRequestSchema } from '@rcflow/agent-protocol';
import { Public, Requires } from '../auth/auth.guard';
import { Caller } from '../auth/caller.decorator';
import { Zod, idParam } from '../common/validation';
import { EnrolmentService } from './enrolment.service';

const createTokenSchema = z.strictObject({
  hostname: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/, 'must be a host name').optional(),
  maxUses: z.number().int().min(1).max(100_000).default(1),
  expiresInSeconds: z.number().int().min(60).max(30 * 86_400).default(3600),
});
const jsonSchema = (s: z.ZodType) => z.toJSONSchema(s, { io: 'input' }) as Record<string, unknown>;

@ApiTags('agents')
@Controller('v1')
export class AgentsController {
  constructor(private readonly enrolment: EnrolmentService) {}

  @Post('enrolment-tokens')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Create an expiring enrolment token (shown once); maxUses > 1 for bulk enrolment' })
  @ApiBody({ schema: jsonSchema(createTokenSchema) })
  createToken(@Caller() caller: PrincipalFacts, @Body(new Zod(createTokenSchema)) body: z.infer<typeof createTokenSchema>) {
    return this.enrolment.createToken(caller.id, body);
  }

  @Get('enrolment-tokens')
  @Requires('admin.read')
  @ApiOperation({ summary: 'Enrolment tokens (never their secrets)' })
  listTokens() {
    return this.enrolment.listTokens();
  }

  @Delete('enrolment-tokens/:id')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Revoke an enrolment token' })
  revokeToken(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.enrolment.revokeToken(caller.id, p.id);
  }

  @Post('devices/:id/credentials/revoke')
  @HttpCode(200)
  @Requires('admin.write')
  @ApiOperation({ summary: "Revoke a device's credentials; its agent is refused until it enrols again" })
  revokeCredentials(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.enrolment.revokeDeviceCredentials(caller.id, p.id);
  }

  @Post('agent/enrol')
  @Public()
  @ApiOperation({ summary: 'An agent exchanges an enrolment token for a device credential (no API key; the token authenticates)' })
  @ApiBody({ schema: jsonSchema(enrolRequestSchema) })
  enrol(@Body(new Zod(enrolRequestSchema)) body: EnrolRequest, @Req() req: Request) {
    return this.enrolment.enrol(body, req.ip ?? 'unknown');
  }
}
