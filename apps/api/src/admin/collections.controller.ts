import { Body, Controller, Delete, Get, Param, Patch, Post, Put, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { PrincipalFacts } from '@rcflow/domain';
import { Requires } from '../auth/auth.guard';
import { Caller } from '../auth/caller.decorator';
import { Zod, idParam } from '../common/validation';
import { CollectionsService } from './collections.service';
import {
  CreateCollectionInput,
  UpdateCollectionInput,
  collectionMemberParams,
  createCollectionSchema,
  pageQuery,
  updateCollectionSchema,
} from './admin.schemas';
import { ApiReturns } from '../common/api-docs';
import * as S from '../openapi-schemas';

@ApiTags('admin: collections')
@Controller('v1')
export class CollectionsController {
  constructor(private readonly collections: CollectionsService) {}

  @Post('collections')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Create a collection (names are unique without regard to case)' })
  @ApiReturns(S.collectionView)
  create(@Caller() caller: PrincipalFacts, @Body(new Zod(createCollectionSchema)) body: CreateCollectionInput) {
    return this.collections.create(caller, body);
  }

  @Get('collections')
  @Requires('admin.read')
  @ApiOperation({ summary: 'List collections in your scope, with member counts (keyset pagination)' })
  @ApiReturns(S.pageOf(S.collectionView))
  list(@Caller() caller: PrincipalFacts, @Query(new Zod(pageQuery, 'query')) q: z.infer<typeof pageQuery>) {
    return this.collections.list(caller, q);
  }

  @Get('collections/:id')
  @Requires('admin.read')
  @ApiOperation({ summary: 'A collection with its member count' })
  @ApiReturns(S.collectionView)
  get(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.collections.get(caller, p.id);
  }

  @Patch('collections/:id')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Rename a collection or change its description' })
  @ApiReturns(S.collectionView)
  update(
    @Caller() caller: PrincipalFacts,
    @Param(new Zod(idParam, 'path')) p: { id: string },
    @Body(new Zod(updateCollectionSchema)) body: UpdateCollectionInput,
  ) {
    return this.collections.update(caller, p.id, body);
  }

  @Delete('collections/:id')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Delete a collection; refused (409) while it has members, deployments or role assignments' })
  @ApiReturns(S.collectionView)
  remove(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.collections.remove(caller, p.id);
  }

  @Get('collections/:id/members')
  @Requires('admin.read')
  @ApiOperation({ summary: 'The devices in a collection (keyset pagination)' })
  @ApiReturns(S.pageOf(S.deviceView))
  members(
    @Caller() caller: PrincipalFacts,
    @Param(new Zod(idParam, 'path')) p: { id: string },
    @Query(new Zod(pageQuery, 'query')) q: z.infer<typeof pageQuery>,
  ) {
    return this.collections.members(caller, p.id, q);
  }

  @Put('collections/:id/members/:deviceId')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Add a device to a collection (idempotent: changed=false when it already was a member)' })
  @ApiReturns(S.collectionMembership)
  addMember(@Caller() caller: PrincipalFacts, @Param(new Zod(collectionMemberParams, 'path')) p: z.infer<typeof collectionMemberParams>) {
    return this.collections.addMember(caller, p.id, p.deviceId);
  }

  @Delete('collections/:id/members/:deviceId')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Remove a device from a collection (idempotent: changed=false when it was not a member)' })
  @ApiReturns(S.collectionMembership)
  removeMember(
    @Caller() caller: PrincipalFacts,
    @Param(new Zod(collectionMemberParams, 'path')) p: z.infer<typeof collectionMemberParams>,
  ) {
    return this.collections.removeMember(caller, p.id, p.deviceId);
  }
}
