import { Body, Controller, Delete, Get, Param, Post, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { PrincipalFacts } from '@rcflow/domain';
import { Requires } from '../auth/auth.guard';
import { Caller } from '../auth/caller.decorator';
import { Zod, idParam } from '../common/validation';
import { RoleAssignmentsService } from './role-assignments.service';
import { CreateRoleAssignmentInput, createRoleAssignmentSchema, listRoleAssignmentsQuery } from './admin.schemas';
import { ApiErrors, ApiReturns } from '../common/api-docs';
import * as S from '../openapi-schemas';

@ApiTags('admin: role assignments')
@Controller('v1')
export class RoleAssignmentsController {
  constructor(private readonly roleAssignments: RoleAssignmentsService) {}

  @Post('role-assignments')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Grant a role over collections (collectionIds null = every collection)' })
  @ApiReturns(S.roleAssignmentView)
  @ApiErrors(422)
  create(@Caller() caller: PrincipalFacts, @Body(new Zod(createRoleAssignmentSchema)) body: CreateRoleAssignmentInput) {
    return this.roleAssignments.assign(caller, body);
  }

  @Get('role-assignments')
  @Requires('admin.read')
  @ApiOperation({ summary: 'List role assignments (principalId filter; keyset pagination)' })
  @ApiReturns(S.pageOf(S.roleAssignmentView))
  list(@Query(new Zod(listRoleAssignmentsQuery, 'query')) q: z.infer<typeof listRoleAssignmentsQuery>) {
    return this.roleAssignments.list(q);
  }

  @Get('role-assignments/:id')
  @Requires('admin.read')
  @ApiOperation({ summary: 'A role assignment' })
  @ApiReturns(S.roleAssignmentView)
  get(@Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.roleAssignments.get(p.id);
  }

  @Delete('role-assignments/:id')
  @Requires('admin.write')
  @ApiOperation({
    summary: 'Remove a role assignment',
    description:
      'Refused (409) for the last full_administrator over all collections, or when nobody enabled could administer rcflow afterwards.',
  })
  @ApiReturns(S.roleAssignmentView)
  remove(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.roleAssignments.remove(caller, p.id);
  }
}
