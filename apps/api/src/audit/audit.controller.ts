import { Controller, Get, Inject, Query, Res } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { DataSource } from 'typeorm';
import { z } from 'zod';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { verifyAudit } from '@rcflow/audit';
import { Requires } from '../auth/auth.guard';
import { Zod, cursor, decodeCursor, encodeCursor, limit } from '../common/validation';
import { AuditExportService } from './audit-export.service';
import { AUDIT_ITEM_COLUMNS, AuditFilter, auditFilterQuery, auditFilters, auditItem, filterSql } from './audit-query';

const auditQuery = z.strictObject({ ...auditFilters, limit, cursor: cursor.optional() });

@ApiTags('audit')
@Controller('v1/audit')
export class AuditController {
  constructor(
    private readonly dataSource: DataSource,
    private readonly exporter: AuditExportService,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  @Get()
  @Requires('audit.read')
  @ApiOperation({ summary: 'Audit events, newest first, with filters and keyset pagination' })
  async list(@Query(new Zod(auditQuery, 'query')) q: z.infer<typeof auditQuery>) {
    const params: unknown[] = [];
    const where = filterSql(q, params);
    if (q.cursor) {
      params.push(String(decodeCursor(q.cursor, 1)[0]));
      where.push(`id < $${params.length}`);
    }
    const rows = await this.dataSource.query(
      `SELECT ${AUDIT_ITEM_COLUMNS} FROM audit_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ${q.limit + 1}`,
      params,
    );
    const page = rows.slice(0, q.limit).map(auditItem);
    const last = page[page.length - 1];
    return { items: page, nextCursor: rows.length > q.limit && last ? encodeCursor([last.id]) : null };
  }

  @Get('export')
  @Requires('audit.read')
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
    return verifyAudit(this.dataSource, this.config.audit.hmacKey);
  }
}
