import { Controller, Get, HttpCode, Param, Post, Query, UseGuards } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { PrincipalFacts } from '@rcflow/domain';
import { Requires } from '../auth/auth.guard';
import { Caller } from '../auth/caller.decorator';
import { Zod, idParam, uuid } from '../common/validation';
import { allCollections } from '../common/all-collections.guard';
import { WritebackPageQuery, writebackPageQuery } from './ticket-integrations.schemas';
import { TicketWritebacksService } from './ticket-writebacks.service';
import { ApiReturns } from '../common/api-docs';
import * as S from '../openapi-schemas';

const writebackParams = z.strictObject({ id: uuid, writebackId: uuid });

/** The notes an integration owes its tickets; like the delivery log, readable with admin.read over all collections. */
@ApiTags('ticket integrations')
@Controller('v1/ticket-integrations/:id/writebacks')
@UseGuards(allCollections('admin.read'))
export class TicketWritebacksController {
  constructor(private readonly writebacks: TicketWritebacksService) {}

  @Get()
  @Requires('admin.read')
  @ApiOperation({
    summary: 'Notes written back to tickets, oldest first: pending, sent, dead (the dead letters) or skipped',
  })
  @ApiReturns(S.pageOf(S.ticketWriteback))
  list(@Param(new Zod(idParam, 'path')) p: { id: string }, @Query(new Zod(writebackPageQuery, 'query')) q: WritebackPageQuery) {
    return this.writebacks.list(p.id, q);
  }

  @Post(':writebackId/retry')
  @HttpCode(202)
  @Requires('admin.write')
  @ApiOperation({
    summary: 'Re-drive a dead (or skipped, or stuck) note: attempts reset, a new job; a sent note answers 409',
  })
  @ApiReturns(S.ticketWriteback)
  retry(@Caller() caller: PrincipalFacts, @Param(new Zod(writebackParams, 'path')) p: z.infer<typeof writebackParams>) {
    return this.writebacks.redrive(caller, p.id, p.writebackId);
  }
}
