import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { PrincipalFacts } from '@rcflow/domain';
import { Requires } from '../auth/auth.guard';
import { Caller } from '../auth/caller.decorator';
import { Zod, idParam } from '../common/validation';
import { createEnrolmentTokenSchema } from './admin.schemas';
import { EnrolmentAdminService } from './enrolment-admin.service';
import { ApiErrors, ApiReturns } from '../common/api-docs';
import * as S from '../openapi-schemas';

@ApiTags('agents')
@Controller('v1')
export class EnrolmentAdminController {
  constructor(private readonly enrolment: EnrolmentAdminService) {}

  @Post('enrolment-tokens')
  @Requires('admin.write')
  @ApiOperation({
    summary: 'Create an expiring enrolment token (shown once); maxUses > 1 for bulk enrolment',
    description:
      'A token either creates new devices only (joining collectionId, which a scoped administrator must give) or, with deviceId ' +
      '(or the hostname of an existing device), re-keys that one device: enrolling with it replaces the device credential and ' +
      'closes its open connections. Devices and collections outside your scope answer 404 and 403.',
  })
  @ApiReturns(S.issuedEnrolmentToken)
  @ApiErrors(422)
  createToken(
    @Caller() caller: PrincipalFacts,
    @Body(new Zod(createEnrolmentTokenSchema)) body: z.infer<typeof createEnrolmentTokenSchema>,
  ) {
    return this.enrolment.createToken(caller, body);
  }

  @Get('enrolment-tokens')
  @Requires('admin.read')
  @ApiOperation({ summary: 'Enrolment tokens in your scope (never their secrets)' })
  @ApiReturns(z.object({ items: z.array(S.enrolmentTokenView) }))
  listTokens(@Caller() caller: PrincipalFacts) {
    return this.enrolment.listTokens(caller);
  }

  @Delete('enrolment-tokens/:id')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Revoke an enrolment token' })
  @ApiReturns(z.object({ id: z.uuid(), revoked: z.literal(true) }))
  revokeToken(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.enrolment.revokeToken(caller, p.id);
  }

  @Post('devices/:id/credentials/revoke')
  @HttpCode(200)
  @Requires('admin.write')
  @ApiOperation({ summary: "Revoke a device's credentials; its agent is refused until it enrols again" })
  @ApiReturns(z.object({ deviceId: z.uuid(), revoked: z.int().min(0).meta({ description: 'How many credentials were revoked' }) }))
  revokeCredentials(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.enrolment.revokeDeviceCredentials(caller, p.id);
  }
}
