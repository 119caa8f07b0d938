import { Body, Controller, Delete, Get, Param, Post, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { PrincipalFacts } from '@rcflow/domain';
import { Requires } from '../auth/auth.guard';
import { Caller } from '../auth/caller.decorator';
import { Zod, idParam } from '../common/validation';
import { ApiKeysService } from './api-keys.service';
import { CreateApiKeyInput, createApiKeySchema, listApiKeysQuery } from './admin.schemas';
import { ApiErrors, ApiReturns } from '../common/api-docs';
import * as S from '../openapi-schemas';

@ApiTags('admin: API keys')
@Controller('v1')
export class ApiKeysController {
  constructor(private readonly apiKeys: ApiKeysService) {}

  @Post('api-keys')
  @Requires('admin.write')
  @ApiOperation({
    summary: 'Issue an API key for a user or service',
    description: 'The response carries the key (rcf_<id>.<secret>) once; only its hash is stored. Use it as Authorization: Bearer <key>.',
  })
  @ApiReturns(S.issuedApiKey)
  @ApiErrors(422)
  create(@Caller() caller: PrincipalFacts, @Body(new Zod(createApiKeySchema)) body: CreateApiKeyInput) {
    return this.apiKeys.create(caller, body);
  }

  @Get('api-keys')
  @Requires('admin.read')
  @ApiOperation({ summary: 'List API keys (principalId filter; keyset pagination); secrets and hashes are never returned' })
  @ApiReturns(S.pageOf(S.apiKeyView))
  list(@Query(new Zod(listApiKeysQuery, 'query')) q: z.infer<typeof listApiKeysQuery>) {
    return this.apiKeys.list(q);
  }

  @Get('api-keys/:id')
  @Requires('admin.read')
  @ApiOperation({ summary: 'An API key (without its secret)' })
  @ApiReturns(S.apiKeyView)
  get(@Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.apiKeys.get(p.id);
  }

  @Delete('api-keys/:id')
  @Requires('admin.write')
  @ApiOperation({ summary: 'Revoke an API key (idempotent: changed=false when it already was revoked)' })
  @ApiReturns(S.revokedApiKey)
  revoke(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.apiKeys.revoke(caller, p.id);
  }
}
