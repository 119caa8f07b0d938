import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { z } from 'zod';
import type { PrincipalFacts } from '@rcflow/domain';
import { Requires } from '../auth/auth.guard';
import { Caller } from '../auth/caller.decorator';
import { Zod, idParam } from '../common/validation';
import {
  CreateScheduleBody,
  UpdateScheduleBody,
  createScheduleSchema,
  listSchedulesQuery,
  previewQuery,
  runsQuery,
  updateScheduleSchema,
} from './schedules.schemas';
import { SchedulesService } from './schedules.service';
import { ApiErrors, ApiInput, ApiReturns } from '../common/api-docs';
import * as S from '../openapi-schemas';

/** Recurring schedules: sessions asked for at each occurrence, as the owner, checked again then. */
@ApiTags('schedules')
@Controller('v1/schedules')
export class SchedulesController {
  constructor(private readonly schedules: SchedulesService) {}

  @Post()
  @Requires('session.request')
  @ApiOperation({
    summary: 'Create a recurring schedule',
    description:
      'timing: {cron, timeZone} or {intervalMinutes}, with startsAt (default now), endsAt, windowMinutes (default 30) and missedPolicy (skip or run_once, default skip). Answers with the next five occurrences.',
  })
  @ApiInput({
    bodyExample: {
      name: 'weekday patch window',
      timing: { cron: '0 9 * * 1-5', timeZone: 'Europe/Amsterdam', windowMinutes: 30, missedPolicy: 'skip' },
      collectionId: '3f2a7c9e-1b4d-4e8a-9c6f-2d5e8b1a7f30',
      type: 'remote-control',
      access: 'full',
      reason: 'monthly patching',
    },
  })
  @ApiReturns(S.createdSchedule, { headers: { Location: 'The schedule: /v1/schedules/{id}' } })
  @ApiErrors(422)
  async create(
    @Caller() caller: PrincipalFacts,
    @Body(new Zod(createScheduleSchema)) body: CreateScheduleBody,
    @Res({ passthrough: true }) res: Response,
  ) {
    const created = await this.schedules.create(caller, body);
    res.status(201).setHeader('Location', `/v1/schedules/${created.id}`);
    return created;
  }

  @Get()
  @ApiOperation({ summary: 'Schedules you own or may read (oldest first; deleted ones only with state=deleted)' })
  @ApiReturns(S.pageOf(S.scheduleView))
  list(@Caller() caller: PrincipalFacts, @Query(new Zod(listSchedulesQuery, 'query')) q: z.infer<typeof listSchedulesQuery>) {
    return this.schedules.list(caller, q);
  }

  @Get(':id')
  @ApiOperation({ summary: 'A schedule' })
  @ApiReturns(S.scheduleView)
  get(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.schedules.get(caller, p.id);
  }

  @Patch(':id')
  @ApiOperation({ summary: 'Change a schedule (owner only); a new timing counts from now' })
  @ApiInput({ bodyExample: { name: 'weekday patch window (mornings)', reason: 'monthly patching' } })
  @ApiReturns(S.scheduleView)
  @ApiErrors(422)
  update(
    @Caller() caller: PrincipalFacts,
    @Param(new Zod(idParam, 'path')) p: { id: string },
    @Body(new Zod(updateScheduleSchema)) body: UpdateScheduleBody,
  ) {
    return this.schedules.update(caller, p.id, body);
  }

  @Post(':id/pause')
  @HttpCode(200)
  @ApiOperation({ summary: 'Pause: occurrences falling while paused are not run' })
  @ApiReturns(S.scheduleView)
  pause(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.schedules.pause(caller, p.id);
  }

  @Post(':id/resume')
  @HttpCode(200)
  @ApiOperation({ summary: 'Resume from now on' })
  @ApiReturns(S.scheduleView)
  resume(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    return this.schedules.resume(caller, p.id);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete: no occurrence runs any more; it stays readable with its history' })
  @ApiReturns(null)
  async remove(@Caller() caller: PrincipalFacts, @Param(new Zod(idParam, 'path')) p: { id: string }) {
    await this.schedules.remove(caller, p.id);
  }

  @Get(':id/occurrences')
  @ApiOperation({ summary: "The next occurrences (count, default 5, at most 100) in UTC and on the schedule's clock" })
  @ApiReturns(S.schedulePreview)
  preview(
    @Caller() caller: PrincipalFacts,
    @Param(new Zod(idParam, 'path')) p: { id: string },
    @Query(new Zod(previewQuery, 'query')) q: z.infer<typeof previewQuery>,
  ) {
    return this.schedules.preview(caller, p.id, q.count);
  }

  @Get(':id/runs')
  @ApiOperation({
    summary: 'What became of past occurrences, newest first: requested (with sessions), refused or expired, with the reason',
  })
  @ApiReturns(S.scheduleRuns)
  runs(
    @Caller() caller: PrincipalFacts,
    @Param(new Zod(idParam, 'path')) p: { id: string },
    @Query(new Zod(runsQuery, 'query')) q: z.infer<typeof runsQuery>,
  ) {
    return this.schedules.runs(caller, p.id, q);
  }
}
