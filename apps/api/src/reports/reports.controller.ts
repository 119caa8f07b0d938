import { z } from 'zod';
import { Controller, Get, Headers, Param, Query, Res } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Inject } from '@nestjs/common';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { type PrincipalFacts, scopeOf } from '@rcflow/domain';
import { Requires } from '../auth/auth.guard';
import { Caller } from '../auth/caller.decorator';
import { negotiateFormat, parseReportQuery, reportQuerySchema } from './report-query';
import { ReportsService } from './reports.service';
import { ApiInput, ApiReturns } from '../common/api-docs';
import * as S from '../openapi-schemas';

@ApiTags('reports')
@Controller('v1/reports')
export class ReportsController {
  constructor(
    private readonly reports: ReportsService,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  @Get()
  @Requires('audit.read')
  @ApiOperation({ summary: 'The reports rcflow offers, with the parameters each takes' })
  @ApiReturns(S.reportCatalogue)
  catalogue() {
    return this.reports.catalogue();
  }

  @Get(':name')
  @Requires('audit.read')
  @ApiProduces('application/json', 'text/csv', 'application/x-ndjson')
  @ApiOperation({
    summary: 'Runs one report over a time range (default: the last 30 days) as JSON, CSV or NDJSON, streamed',
    description:
      'Format: `format=json|csv|ndjson`, else the Accept header (text/csv, application/x-ndjson), else JSON. A caller scoped to ' +
      'some collections sees the sessions of devices in them only; a collectionId or deviceId outside the scope is 404. ' +
      'Reports running at once per API process are limited (REPORT_CONCURRENCY): beyond that, 429 with Retry-After.',
  })
  @ApiInput({
    query: reportQuerySchema,
    params: z.object({ name: z.string().meta({ description: 'A report name from GET /v1/reports', example: 'sessions-per-day' }) }),
  })
  @ApiReturns(S.reportResult)
  @ApiReturns({ type: 'string', example: 'day,sessions\n2026-03-02,12\n' }, { contentType: 'text/csv' })
  @ApiReturns({ type: 'string', example: '{"day":"2026-03-02","sessions":12}\n' }, { contentType: 'application/x-ndjson' })
  async run(
    @Caller() caller: PrincipalFacts,
    @Param('name') name: string,
    @Query() query: unknown,
    @Headers('accept') accept: string | undefined,
    @Res() res: Response,
  ): Promise<void> {
    this.reports.definition(name); // an unknown report is 404 before its query is judged
    const { format, ...params } = parseReportQuery(query, this.config.reports.maxSpanDays);
    await this.reports.run(name, params, scopeOf(caller.grants, 'audit.read'), negotiateFormat(format, accept), res);
  }
}
