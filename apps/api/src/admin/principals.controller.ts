import { Body, Controller, Delete, Get, Param, Patch, Post, Put, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { PrincipalFacts } from '@rcflow/domain';
import { Requires } from '../auth/auth.guard';
import { Caller } from '../auth/caller.decorator';
import { Zod, idParam } from '../common/validation';
import { PrincipalsService } from './principals.service';
import {
  CreatePrincipalInput,
  UpdatePrincipalInput,
  createPrincipalSchema,
  groupMemberParams,
  listPrincipalsQuery,
  updatePrincipalSchema,
} from './admin.schemas';
import { ApiErrors, ApiReturns } from '../common/api-docs';
import * as S from '../openapi-schemas';

@ApiTags('admin: principals')
@Controller('v1')
export class PrincipalsController {
  constructor(private readonly principals: PrincipalsService) {}

  @Post('principals')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Create a user, group or service principal (names are unique without regard to case)' })
  @ApiReturns(S.principalView)
  create(@Caller() caller: PrincipalFacts, @Body(new Zod(createPrincipalSchema)) body: CreatePrincipalInput) {
    return this.principals.create(caller, body);
  }

  @Get('principals')
  @Requires('admin.read')
  @ApiOperation({ summary: 'List principals (kind filter, name prefix without regard to case; keyset pagination)' })
  @ApiReturns(S.pageOf(S.principalView))
  list(@Query(new Zod(listPrincipalsQuery, 'query')) q: z.infer<typeof listPrincipalsQuery>) {
    return this.principals.list(q);
  }

  @Get('principals/:id')
  @Requires('admin.read')
  @ApiOperation({ summary: 'A principal with the groups it belongs to (direct and nested) and, for a group, its members' })
  @ApiReturns(S.principalDetail)
  get(@Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.principals.get(p.id);
  }

  @Patch('principals/:id')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Change displayName or disable/enable a principal (disabling the last full administrator is refused)' })
  @ApiReturns(S.principalView)
  update(
    @Caller() caller: PrincipalFacts,
    @Param(new Zod(idParam, 'path')) p: { id: string },
    @Body(new Zod(updatePrincipalSchema)) body: UpdatePrincipalInput,
  ) {
    return this.principals.update(caller, p.id, body);
  }

  @Put('principals/:groupId/members/:memberId')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Add a principal to a group (idempotent; a group cannot contain itself, directly or through nesting)' })
  @ApiReturns(S.groupMembership)
  @ApiErrors(422)
  addMember(@Caller() caller: PrincipalFacts, @Param(new Zod(groupMemberParams, 'path')) p: z.infer<typeof groupMemberParams>) {
    return this.principals.addMember(caller, p.groupId, p.memberId);
  }

  @Delete('principals/:groupId/members/:memberId')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Remove a principal from a group (idempotent)' })
  @ApiReturns(S.groupMembership)
  @ApiErrors(422)
  removeMember(@Caller() caller: PrincipalFacts, @Param(new Zod(groupMemberParams, 'path')) p: z.infer<typeof groupMemberParams>) {
    return this.principals.removeMember(caller, p.groupId, p.memberId);
  }
}
