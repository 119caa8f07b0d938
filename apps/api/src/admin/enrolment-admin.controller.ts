import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { PrincipalFacts } from '@rcflow/domain';
import { Requires } from '../auth/auth.guard';
import { Caller } from '../auth/caller.decorator';
import { Zod, idParam } from '../common/validation';
import { BodyOf } from './admin-docs';
import { createEnrolmentTokenSchema } from './admin.schemas';
import { EnrolmentAdminService } from './enrolment-admin.service';

@ApiTags('agents')
@Controller('v1')
export class EnrolmentAdminController {
  constructor(private readonly enrolment: EnrolmentAdminService) {}

  @Post('enrolment-tokens')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Create an expiring enrolment token (shown once); maxUses > 1 for bulk enrolment' })
  @BodyOf(createEnrolmentTokenSchema)
  createToken(
    @Caller() caller: PrincipalFacts,
    @Body(new Zod(createEnrolmentTokenSchema)) body: z.infer<typeof createEnrolmentTokenSchema>,
  ) {
    return this.enrolment.createToken(caller, body);
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
    return this.enrolment.revokeToken(caller, p.id);
  }

  @Post('devices/:id/credentials/revoke')
  @HttpCode(200)
  @Requires('admin.write')
  @ApiOperation({ summary: "Revoke a device's credentials; its agent is refused until it enrols again" })
  revokeCredentials(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.enrolment.revokeDeviceCredentials(caller, p.id);
  }
}
