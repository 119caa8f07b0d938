import { Body, Controller, Get, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { PrincipalFacts } from '@rcflow/domain';
import { Requires } from '../auth/auth.guard';
import { Caller } from '../auth/caller.decorator';
import { Zod, idParam } from '../common/validation';
import { DevicesService } from './devices.service';
import { CreateDeviceInput, UpdateDeviceInput, createDeviceSchema, listDevicesQuery, updateDeviceSchema } from './admin.schemas';
import { ApiReturns } from '../common/api-docs';
import * as S from '../openapi-schemas';

@ApiTags('admin: devices')
@Controller('v1')
export class DevicesController {
  constructor(private readonly devices: DevicesService) {}

  @Post('devices')
  @Requires('admin.write')
  @ApiOperation({
    summary: 'Register a device',
    description:
      'Presence fields (lastHeartbeatAt, loggedOnUser, locked) are normally reported by the agent; they are accepted here so ' +
      'devices can be registered before the agent channel exists. Defaults: osFamily windows, enrolled true. Hostnames are unique without regard to case.',
  })
  @ApiReturns(S.deviceView)
  create(@Caller() caller: PrincipalFacts, @Body(new Zod(createDeviceSchema)) body: CreateDeviceInput) {
    return this.devices.create(caller, body);
  }

  @Get('devices')
  @Requires('admin.read')
  @ApiOperation({ summary: 'List devices in your scope (hostname prefix without regard to case, collection filter; keyset pagination)' })
  @ApiReturns(S.pageOf(S.deviceView))
  list(@Caller() caller: PrincipalFacts, @Query(new Zod(listDevicesQuery, 'query')) q: z.infer<typeof listDevicesQuery>) {
    return this.devices.list(caller, q);
  }

  @Get('devices/:id')
  @Requires('admin.read')
  @ApiOperation({ summary: 'A device with the collections it belongs to' })
  @ApiReturns(S.deviceView)
  get(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.devices.get(caller, p.id);
  }

  @Patch('devices/:id')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Change a device (only the fields sent; null clears a nullable field; retired retires it)' })
  @ApiReturns(S.deviceView)
  update(
    @Caller() caller: PrincipalFacts,
    @Param(new Zod(idParam, 'path')) p: { id: string },
    @Body(new Zod(updateDeviceSchema)) body: UpdateDeviceInput,
  ) {
    return this.devices.update(caller, p.id, body);
  }

  @Get('devices/:id/effective-settings')
  @Requires('admin.read')
  @ApiOperation({
    summary: "The device's resultant client settings",
    description:
      'The default set overridden by the custom sets deployed to its collections, lowest order winning, with the set that supplied each value.',
  })
  @ApiReturns(S.effectiveSettings)
  effective(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.devices.effectiveSettings(caller, p.id);
  }
}
