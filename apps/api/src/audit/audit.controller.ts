import { Controller, Get, Query, Res, UseGuards } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { z } from 'zod';
import { Requires } from '../auth/auth.guard';
import { Caller } from '../auth/caller.decorator';
import { allCollections } from '../common/all-collections.guard';
import { type PrincipalFacts, scopeOf } from '@rcflow/domain';
import { Zod, cursor, limit } from '../common/validation';
import { AuditExportService } from './audit-export.service';
import { AuditFilter, auditFilterQuery, auditFilters } from './audit-query';
import { AuditQueryService } from './audit-query.service';
import { VerifyLock } from './verify-lock';
import { ApiReturns } from '../common/api-docs';
import * as S from '../openapi-schemas';

const auditQuery = z.strictObject({ ...auditFilters, limit, cursor: cursor.optional() });

@ApiTags('audit')
@Controller('v1/audit')
export class AuditController {
  constructor(
    private readonly audit: AuditQueryService,
    private readonly exporter: AuditExportService,
    private readonly verifyLock: VerifyLock,
  ) {}

  @Get()
  @Requires('audit.read')
  @ApiOperation({
    summary: 'Audit events, newest first, with filters and keyset pagination',
    description: 'A caller scoped to some collections sees the events of devices (and their sessions) in them only.',
  })
  @ApiReturns(S.pageOf(S.auditEvent))
  list(@Caller() caller: PrincipalFacts, @Query(new Zod(auditQuery, 'query')) q: z.infer<typeof auditQuery>) {
    return this.audit.list(q, scopeOf(caller.grants, 'audit.read'));
  }

  @Get('export')
  @Requires('audit.read')
  @ApiProduces('application/x-ndjson')
  @ApiOperation({
    summary: 'Every audit event matching the filters as NDJSON (one list item per line), oldest first, streamed',
  })
  @ApiReturns(
    { type: 'string', description: 'One audit event (as in the list) per line', example: '{"id":"1","action":"session.requested"}\n' },
    { contentType: 'application/x-ndjson' },
  )
  async export(
    @Caller() caller: PrincipalFacts,
    @Query(new Zod(auditFilterQuery, 'query')) q: AuditFilter,
    @Res() res: Response,
  ): Promise<void> {
    await this.exporter.export(q, scopeOf(caller.grants, 'audit.read'), res);
  }

  @Get('verify')
  // The verification walks every stream: a caller scoped to some collections is refused (403).
  @UseGuards(allCollections('audit.read'))
  @Requires('audit.read')
  @ApiOperation({
    summary: 'Verify the tamper evidence of every audit event; ok=false names where it breaks',
    description:
      'Also checks the trail against the newest signed checkpoint of the stream heads (AUDIT_CHECKPOINT_DIR, else Redis): ' +
      '`checkpoint` says which one (takenAt, source) or that there is none. ' +
      'One verification runs at a time across the API processes; a caller meanwhile gets 429 with Retry-After.',
  })
  @ApiReturns(S.auditVerification)
  verify() {
    return this.verifyLock.run(() => this.audit.verify());
  }
}
