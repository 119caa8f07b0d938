import { Body, Controller, Delete, Get, Param, Patch, Post, Put } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { PrincipalFacts } from '@rcflow/domain';
import { Requires } from '../auth/auth.guard';
import { Caller } from '../auth/caller.decorator';
import { Zod, idParam } from '../common/validation';
import { ClientSettingsService } from './client-settings.service';
import {
  CreateClientSettingsInput,
  UpdateClientSettingsInput,
  createClientSettingsSchema,
  deploymentParams,
  updateClientSettingsSchema,
} from './admin.schemas';
import { ApiErrors, ApiReturns } from '../common/api-docs';
import * as S from '../openapi-schemas';

@ApiTags('admin: client settings')
@Controller('v1')
export class ClientSettingsController {
  constructor(private readonly settings: ClientSettingsService) {}

  @Get('client-settings')
  @Requires('admin.read')
  @ApiOperation({ summary: 'Every client settings set in merge order: custom sets by order, the default (10000) last' })
  @ApiReturns(S.pageOf(S.clientSettingsView))
  list() {
    return this.settings.list();
  }

  @Get('client-settings/:id')
  @Requires('admin.read')
  @ApiOperation({ summary: 'A client settings set with the collections it is deployed to' })
  @ApiReturns(S.clientSettingsView)
  get(@Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.settings.get(p.id);
  }

  @Post('client-settings')
  @Requires('admin.write')
  @ApiOperation({
    summary: 'Create custom client settings',
    description: 'order 1..9999, lower wins on a conflict; remoteTools holds only the settings this set configures.',
  })
  @ApiReturns(S.clientSettingsView)
  create(@Caller() caller: PrincipalFacts, @Body(new Zod(createClientSettingsSchema)) body: CreateClientSettingsInput) {
    return this.settings.create(caller, body);
  }

  @Patch('client-settings/:id')
  @Requires('admin.write')
  @ApiOperation({
    summary: 'Change client settings',
    description:
      'remoteTools is a merge patch onto the stored values: a value sets a setting, null removes it from a custom set. ' +
      'The default set must stay complete (null refused) and keeps order 10000.',
  })
  @ApiReturns(S.clientSettingsView)
  @ApiErrors(422)
  update(
    @Caller() caller: PrincipalFacts,
    @Param(new Zod(idParam, 'path')) p: { id: string },
    @Body(new Zod(updateClientSettingsSchema)) body: UpdateClientSettingsInput,
  ) {
    return this.settings.update(caller, p.id, body);
  }

  @Delete('client-settings/:id')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Delete custom client settings and their deployments (the default set cannot be deleted)' })
  @ApiReturns(S.clientSettingsView)
  @ApiErrors(422)
  remove(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.settings.remove(caller, p.id);
  }

  @Put('client-settings/:id/deployments/:collectionId')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Deploy custom client settings to a collection (idempotent; the default set cannot be deployed)' })
  @ApiReturns(S.deployment)
  @ApiErrors(422)
  deploy(@Caller() caller: PrincipalFacts, @Param(new Zod(deploymentParams, 'path')) p: z.infer<typeof deploymentParams>) {
    return this.settings.deploy(caller, p.id, p.collectionId);
  }

  @Delete('client-settings/:id/deployments/:collectionId')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Remove a deployment (idempotent)' })
  @ApiReturns(S.deployment)
  undeploy(@Caller() caller: PrincipalFacts, @Param(new Zod(deploymentParams, 'path')) p: z.infer<typeof deploymentParams>) {
    return this.settings.undeploy(caller, p.id, p.collectionId);
  }
}
