import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import type { Request, Response } from 'express';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { DomainError, type PrincipalFacts, UnprocessableRequest, scopeOf } from '@rcflow/domain';
import { AuthGuard } from '../auth/auth.guard';
import { KeyRevocations } from '../edge/key-revocations';
import { ShutdownGate } from '../shutdown-gate';
import { EventStream } from './event-stream';
import { EVENT_COLUMNS, EventAccess, EventFilter, EventRow, eventsWhereSql } from './events-filter';
import { EventsHub } from './events-hub';

/** Rows per catch-up read. */
const CATCH_UP_PAGE = 500;
/** How often an open stream's credentials are re-checked: the guard's key cache period. */
const RECHECK_MS = 5000;

/** 429 for one stream too many: Retry-After says when to try again. */
class TooManyStreams extends DomainError {
  constructor(max: number) {
    super(429, 'too_many_streams', `at most ${max} event streams per principal at once on this API process; close one first`, {
      retryAfterSeconds: 5,
    });
  }
}

export interface OpenStream {
  filter: EventFilter;
  /** Resume after this id (Last-Event-ID or ?after=); none: from now. */
  after: string | undefined;
  /** false: end once caught up with the head. */
  follow: boolean;
}

/** The caller's access to events: their audit.read scope, and their own sessions whoever they are. */
export function accessOf(principal: PrincipalFacts): EventAccess {
  return { principalId: principal.id, scope: scopeOf(principal.grants, 'audit.read') };
}

/**
 * Opens and keeps the event streams of this API process: the per-principal limit, the catch-up of
 * a resumed stream from the table before it joins the shared live feed (EventsHub), the keep-alive
 * comments, the re-check of each stream's credentials (a revoked key's stream ends), and the end
 * of every stream when shutdown begins.
 */
@Injectable()
export class EventsService implements OnModuleInit, OnModuleDestroy, BeforeApplicationShutdown {
  private readonly logger = new Logger('Events');
  private readonly streams = new Set<EventStream>();
  private readonly perPrincipal = new Map<string, number>();
  private timers: NodeJS.Timeout[] = [];
  private closing = false;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
    private readonly hub: EventsHub,
    private readonly guard: AuthGuard,
    revocations: KeyRevocations,
    gate: ShutdownGate,
  ) {
    // After the guard has forgotten the key (its listener runs in the same turn).
    revocations.onRevoked(() => setImmediate(() => void this.recheck()));
    gate.onClose(() => this.closeAll());
  }

  onModuleInit(): void {
    const heartbeat = setInterval(() => {
      for (const s of this.streams) s.heartbeat();
    }, this.config.events.heartbeatMs);
    const recheck = setInterval(() => void this.recheck(), RECHECK_MS);
    this.timers = [heartbeat, recheck];
    for (const t of this.timers) t.unref();
  }

  onModuleDestroy(): void {
    this.closeAll();
  }

  beforeApplicationShutdown(): void {
    this.closeAll();
  }

  /**
   * Answers `req` with an event stream. Refusals (429, 422, 503) come before the headers, with the
   * error shape; afterwards the stream is ended, never failed, so its client resumes.
   */
  async open(principal: PrincipalFacts, req: Request, res: Response, o: OpenStream): Promise<void> {
    const max = this.config.events.maxStreamsPerPrincipal;
    const open = this.perPrincipal.get(principal.id) ?? 0;
    if (open >= max) throw new TooManyStreams(max);
    this.perPrincipal.set(principal.id, open + 1);
    const stream = new EventStream(principal.id, req, res, o.filter, accessOf(principal));
    stream.onEnd(() => {
      this.streams.delete(stream);
      this.hub.leave(stream);
      const n = (this.perPrincipal.get(principal.id) ?? 1) - 1;
      if (n > 0) this.perPrincipal.set(principal.id, n);
      else this.perPrincipal.delete(principal.id);
    });
    try {
      // A resumed stream reads the events up to the join position from the table: that position must be settled.
      const position = await this.hub.join(stream, { settled: o.after !== undefined });
      stream.joined(position);
      const from = o.after !== undefined && BigInt(o.after) < BigInt(position) ? o.after : null;
      if (from !== null) await this.refuseLongReplay(stream, from, position);
      if (stream.isEnded) return;
      stream.open();
      this.streams.add(stream);
      if (this.closing) {
        stream.end();
        return;
      }
      if (from !== null) await this.catchUp(stream, from, position);
      if (!o.follow) {
        stream.end();
        return;
      }
      stream.goLive();
    } catch (err) {
      if (!res.headersSent) {
        stream.end();
        throw err;
      }
      this.logger.warn(`an event stream ended early: ${(err as Error).message}`);
      stream.end({ abort: true });
    }
  }

  /** 422 when more than EVENTS_REPLAY_MAX events would be replayed: the audit list or export is the way to read that many. */
  private async refuseLongReplay(stream: EventStream, after: string, through: string): Promise<void> {
    const cap = this.config.events.replayMax;
    const params: unknown[] = [after, through];
    const where = ['id > $1::bigint', 'id <= $2::bigint', ...eventsWhereSql(stream.filter, stream.access, params)];
    params.push(cap + 1);
    const [row] = await this.dataSource.query<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM (SELECT 1 FROM audit_events WHERE ${where.join(' AND ')} LIMIT $${params.length}) x`,
      params,
    );
    if (row!.n > cap) {
      const message = `more than ${cap} events to replay after ${after}: read them with GET /v1/audit (or /v1/audit/export), then resume after a later id or without one`;
      throw new UnprocessableRequest(message, [{ path: 'after', message }]);
    }
  }

  /** The events after `after` up to `through` (the join position), from the table in pages. */
  private async catchUp(stream: EventStream, after: string, through: string): Promise<void> {
    let cursor = after;
    while (!stream.isEnded) {
      const params: unknown[] = [cursor, through];
      const where = ['id > $1::bigint', 'id <= $2::bigint', ...eventsWhereSql(stream.filter, stream.access, params)];
      const rows = await this.dataSource.query<EventRow[]>(
        `SELECT id::text AS tail_id, ${EVENT_COLUMNS} FROM audit_events WHERE ${where.join(' AND ')} ORDER BY id LIMIT ${CATCH_UP_PAGE}`,
        params,
      );
      await stream.replay(rows);
      if (rows.length < CATCH_UP_PAGE) return;
      cursor = rows[rows.length - 1]!.tail_id;
    }
  }

  /** Ends the streams whose credentials no longer hold; the others see with their current grants. */
  private async recheck(): Promise<void> {
    for (const stream of [...this.streams]) {
      if (stream.isEnded) continue;
      let principal: PrincipalFacts | null;
      try {
        principal = await this.guard.reauthenticate(stream.request as Request);
      } catch {
        // The store behind the credentials cannot answer now (database, Redis): keep the stream and ask again later.
        continue;
      }
      if (principal?.id !== stream.principalId) stream.end();
      else stream.access = accessOf(principal);
    }
  }

  private closeAll(): void {
    this.closing = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.hub.close();
    for (const s of [...this.streams]) s.end();
  }
}
