import { Controller, Get } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { PrincipalFacts } from '@rcflow/domain';
import { ApiReturns } from '../common/api-docs';
import * as S from '../openapi-schemas';
import { Caller } from './caller.decorator';

export interface WhoAmIView {
  principal: { id: string; name: string; kind: string };
  groups: string[];
  grants: { role: string; collectionIds: string[] | null }[];
}

/** Who a caller is, as the API sees them: for clients (rcctl login, the console) to check a key and show its reach. */
export function whoAmI(p: PrincipalFacts): WhoAmIView {
  return {
    principal: { id: p.id, name: p.name, kind: p.kind },
    groups: p.groupNames,
    grants: p.grants.map((g) => ({ role: g.role, collectionIds: g.collectionIds })),
  };
}

@ApiTags('auth')
@Controller('v1/whoami')
export class WhoAmIController {
  /** Any valid key: its principal, the groups it is in, and its role grants (null collectionIds: every collection). */
  @Get()
  @ApiOperation({ summary: "The caller: the key's principal, its groups and its role grants" })
  @ApiReturns(S.whoAmIView)
  get(@Caller() caller: PrincipalFacts): WhoAmIView {
    return whoAmI(caller);
  }
}
