import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { PrincipalFacts } from '@rcflow/domain';
import { Requires } from '../auth/auth.guard';
import { Caller } from '../auth/caller.decorator';
import { Zod, idParam } from '../common/validation';
import { ExternalIdsService } from './external-ids.service';
import { deviceExternalIdSchema, identitySchema } from './ticket-integrations.schemas';
import { ApiErrors, ApiReturns } from '../common/api-docs';
import * as S from '../openapi-schemas';

@ApiTags('ticket integrations')
@Controller('v1')
export class ExternalIdsController {
  constructor(private readonly ids: ExternalIdsService) {}

  @Get('principals/:id/identities')
  @Requires('admin.read')
  @ApiOperation({ summary: 'A principal’s ids in ticket systems (Jira accountId, ServiceNow sys_id, Zendesk id, GitHub login, e-mail)' })
  @ApiReturns(z.array(S.identityView))
  list(@Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.ids.identities(p.id);
  }

  @Post('principals/:id/identities')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Add an id in a ticket system, so that tickets assigned to it have this principal as viewer' })
  @ApiReturns(S.identityView)
  @ApiErrors(422)
  add(
    @Caller() caller: PrincipalFacts,
    @Param(new Zod(idParam, 'path')) p: { id: string },
    @Body(new Zod(identitySchema)) b: z.infer<typeof identitySchema>,
  ) {
    return this.ids.addIdentity(caller, p.id, b.system, b.externalId);
  }

  @Delete('principals/:id/identities')
  @HttpCode(200)
  @Requires('admin.write')
  @ApiOperation({ summary: 'Remove an id in a ticket system (body: system, externalId)' })
  @ApiReturns(S.changedResult)
  remove(
    @Caller() caller: PrincipalFacts,
    @Param(new Zod(idParam, 'path')) p: { id: string },
    @Body(new Zod(identitySchema)) b: z.infer<typeof identitySchema>,
  ) {
    return this.ids.removeIdentity(caller, p.id, b.system, b.externalId);
  }

  @Put('devices/:id/external-id')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Set (or clear, with null) a device’s id in another inventory, e.g. its CMDB sys_id' })
  @ApiReturns(z.object({ deviceId: z.uuid(), externalId: z.string().nullable() }))
  setExternalId(
    @Caller() caller: PrincipalFacts,
    @Param(new Zod(idParam, 'path')) p: { id: string },
    @Body(new Zod(deviceExternalIdSchema)) b: z.infer<typeof deviceExternalIdSchema>,
  ) {
    return this.ids.setDeviceExternalId(caller, p.id, b.externalId);
  }
}
