import { Controller, Get, Query, Req, Res } from '@nestjs/common';
import { ApiHeader, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import type { PrincipalFacts } from '@rcflow/domain';
import { Caller } from '../auth/caller.decorator';
import { Zod } from '../common/validation';
import { QueryParams } from '../admin/admin-docs';
import { EventsQuery, eventsQuery, resumePoint } from './events-filter';
import { EventsService } from './events.service';

@ApiTags('events')
@Controller('v1/events')
export class EventsController {
  constructor(private readonly events: EventsService) {}

  @Get()
  @QueryParams(...Object.keys(eventsQuery.shape))
  @ApiHeader({ name: 'Last-Event-ID', required: false, description: 'Resume after this audit event id (wins over ?after=)' })
  @ApiProduces('text/event-stream')
  @ApiOperation({
    summary: 'Live lifecycle events as Server-Sent Events: each audit event the caller may see, as it is written',
    description:
      'Each event: `id:` the audit event id, `event:` its action (session.active, …), `data:` the same JSON object as one item of GET /v1/audit. ' +
      'Filters: sessionId, deviceId, viewerId, ticketRef, types (comma-separated actions or prefixes ending in a dot, e.g. `session.`). ' +
      'Without Last-Event-ID or `after` the stream starts now; with one it first replays what came after that id (at most EVENTS_REPLAY_MAX events, else 422), ' +
      'then goes live, with no gap and no duplicate. `follow=false` ends the stream once it has caught up. ' +
      "Visible: the events of devices in the caller's audit.read scope (everything over all collections), and the events of sessions the caller requested or is the viewer of. " +
      'A comment line every EVENTS_HEARTBEAT_MS keeps proxies from closing it; a revoked key ends it. ' +
      'At most EVENTS_MAX_STREAMS_PER_PRINCIPAL streams at once per principal and API process (429).',
  })
  async stream(
    @Caller() caller: PrincipalFacts,
    @Query(new Zod(eventsQuery, 'query')) q: EventsQuery,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    const after = resumePoint(req.headers['last-event-id'], q.after);
    const { sessionId, deviceId, viewerId, ticketRef, types } = q;
    await this.events.open(caller, req, res, {
      filter: { sessionId, deviceId, viewerId, ticketRef, types },
      after,
      follow: q.follow ?? true,
    });
  }
}
