import { Controller, Get, Headers, Param, Query, Res } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { z } from 'zod';
import type { PrincipalFacts } from '@rcflow/domain';
import { Requires } from '../auth/auth.guard';
import { Caller } from '../auth/caller.decorator';
import { Zod, idParam } from '../common/validation';
import { AccessReviewService } from './access-review.service';
import { ReviewStreams } from './review-streams';
import { checkQuery, deviceIdCursor, deviceReviewQuery, principalReviewQuery, type CheckQuery } from './access-review.schemas';
import { CSV_HEADER, csvRows } from './access-review-csv';
import { ApiErrors, ApiReturns } from '../common/api-docs';
import * as S from '../openapi-schemas';

@ApiTags('access review')
@Controller('v1/access-review')
export class AccessReviewController {
  constructor(
    private readonly review: AccessReviewService,
    private readonly streams: ReviewStreams,
  ) {}

  @Get('devices/:id')
  @Requires('audit.read')
  @ApiProduces('application/json', 'text/csv')
  @ApiOperation({
    summary: 'Who can reach a device: every principal who can start each session type, with which access, through which chain',
    description:
      'Chain: role assignment → collection → permitted-viewer entry (through which group) or the local-administrator rule → the settings that allow it. Presence is not considered. format=csv downloads it.',
  })
  @ApiReturns(S.accessReview)
  @ApiReturns({ type: 'string', example: 'device,principal,type,access,chain\n' }, { contentType: 'text/csv' })
  async device(
    @Caller() caller: PrincipalFacts,
    @Param(new Zod(idParam, 'path')) p: { id: string },
    @Query(new Zod(deviceReviewQuery, 'query')) q: z.infer<typeof deviceReviewQuery>,
    @Res({ passthrough: true }) res: Response,
  ) {
    const review = await this.review.device(caller, p.id);
    if (q.format !== 'csv') return review;
    res.setHeader('Content-Type', 'text/csv; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="access-review-device-${review.device.id}.csv"`);
    return CSV_HEADER + csvRows(review);
  }

  @Get('principals/:id')
  @Requires('audit.read')
  @ApiProduces('application/json', 'application/x-ndjson', 'text/csv')
  @ApiOperation({
    summary: 'What a principal can reach: every device in your scope, each with its entries and chains',
    description:
      'JSON pages with a cursor; format=ndjson (or Accept: application/x-ndjson) streams one device per line; format=csv downloads every row. Presence is not considered.',
  })
  @ApiReturns(S.principalReviewPage)
  @ApiReturns(
    { type: 'string', example: '{"device":{},"presenceNotConsidered":true,"entries":[]}\n' },
    { contentType: 'application/x-ndjson' },
  )
  @ApiReturns({ type: 'string', example: 'device,principal,type,access,chain\n' }, { contentType: 'text/csv' })
  @ApiErrors(422)
  async principal(
    @Caller() caller: PrincipalFacts,
    @Param(new Zod(idParam, 'path')) p: { id: string },
    @Query(new Zod(principalReviewQuery, 'query')) q: z.infer<typeof principalReviewQuery>,
    @Headers('accept') accept: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ) {
    const after = q.cursor === undefined ? null : deviceIdCursor.decode(q.cursor)[0];
    const format = q.format ?? (accept?.includes('application/x-ndjson') ? 'ndjson' : 'json');
    if (format === 'json') {
      const page = await this.review.principalPage(caller, p.id, q.limit, after);
      return { ...page, nextCursor: page.nextCursor === null ? null : deviceIdCursor.encode([page.nextCursor]) };
    }
    const { world, who } = await this.review.principal(p.id);
    await this.streams.run(res, async (write, isAborted) => {
      if (format === 'csv') {
        res.setHeader('Content-Type', 'text/csv; charset=utf-8');
        res.setHeader('Content-Disposition', `attachment; filename="access-review-principal-${who.principal.id}.csv"`);
        await write(CSV_HEADER);
      } else {
        res.setHeader('Content-Type', 'application/x-ndjson; charset=utf-8');
      }
      for await (const line of this.review.reachable(caller, world, who, after, isAborted)) {
        const text =
          format === 'csv'
            ? csvRows(line)
            : `${JSON.stringify({ device: line.device, presenceNotConsidered: true, entries: line.entries })}\n`;
        await write(text);
      }
    });
  }

  @Get('check')
  @Requires('audit.read')
  @ApiOperation({
    summary: 'Why (not): the ten checks of the dry run for the principal as its own viewer on the device',
    description: 'canReach: the six standing checks pass (what the review lists); eligibleNow: all ten pass now, presence included.',
  })
  @ApiReturns(S.accessCheck)
  @ApiErrors(422)
  check(@Caller() caller: PrincipalFacts, @Query(new Zod(checkQuery, 'query')) q: CheckQuery) {
    return this.review.check(caller, q);
  }
}
