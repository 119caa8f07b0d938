import { Controller, Get, Query, Res } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { z } from 'zod';
import { Requires } from '../auth/auth.guard';
import { Zod, cursor, limit } from '../common/validation';
import { AuditExportService } from './audit-export.service';
import { AuditFilter, auditFilterQuery, auditFilters } from './audit-query';
import { AuditQueryService } from './audit-query.service';
import { QueryParams } from '../admin/admin-docs';

const auditQuery = z.strictObject({ ...auditFilters, limit, cursor: cursor.optional() });

@ApiTags('audit')
@Controller('v1/audit')
export class AuditController {
  constructor(
    private readonly audit: AuditQueryService,
    private readonly exporter: AuditExportService,
  ) {}

  @Get()
  @Requires('audit.read')
  @QueryParams(...Object.keys(auditQuery.shape))
  @ApiOperation({ summary: 'Audit events, newest first, with filters and keyset pagination' })
  list(@Query(new Zod(auditQuery, 'query')) q: z.infer<typeof auditQuery>) {
    return this.audit.list(q);
  }

  @Get('export')
  @Requires('audit.read')
  @QueryParams(...Object.keys(auditFilterQuery.shape))
  @ApiProduces('application/x-ndjson')
  @ApiOperation({
    summary: 'Every audit event matching the filters as NDJSON (one list item per line), oldest first, streamed',
  })
  async export(@Query(new Zod(auditFilterQuery, 'query')) q: AuditFilter, @Res() res: Response): Promise<void> {
    await this.exporter.export(q, res);
  }

  @Get('verify')
  @Requires('audit.read')
  @ApiOperation({ summary: 'Verify the tamper evidence of every audit event; ok=false names where it breaks' })
  verify() {
    return this.audit.verify();
  }
}
