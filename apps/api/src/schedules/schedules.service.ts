import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { appendAudit } from '@rcflow/audit';
import { Schedule, ScheduleOccurrence, OccurrenceTarget } from '@rcflow/database';
import {
  Conflict,
  Forbidden,
  NotFound,
  PrincipalFacts,
  UnprocessableRequest,
  ValidationFailed,
  hasPermission,
  scopeOf,
} from '@rcflow/domain';
import { OutboxRelay, writeOutbox } from '@rcflow/jobs';
import { PreviewedOccurrence, ScheduleSpec, displayZone, nextOccurrences, previewOccurrences } from '@rcflow/schedules';
import { SessionIntake, scheduleStream, scheduleTimerRows } from '@rcflow/sessions';
import { Page, keysetPage } from '../admin/admin-page';
import { Changes, changesOf, isoOrNull, pickChanged } from '../admin/admin-context';
import type { CreateScheduleBody, UpdateScheduleBody } from './schedules.schemas';

/** A schedule as the API shows it. */
export interface ScheduleView {
  id: string;
  name: string;
  ownerId: string;
  /** active, paused, ended (no occurrence left) or deleted. */
  state: string;
  timing: ScheduleSpec;
  deviceIds: string[] | null;
  collectionId: string | null;
  viewerId: string | null;
  type: string;
  access: string;
  reason: string | null;
  ticketRef: string | null;
  /** Minutes before each occurrence the user at the device is told (null: not told), and whether asked to agree ahead. */
  remindMinutes: number | null;
  askApproval: boolean;
  /** The next occurrence (UTC), null while paused or when none is left. */
  nextAt: string | null;
  /** The last occurrence decided. */
  lastPlannedAt: string | null;
  version: number;
  createdAt: string;
  updatedAt: string;
}

const view = (s: Schedule): ScheduleView => ({
  id: s.id,
  name: s.name,
  ownerId: s.ownerId,
  state: s.state,
  timing: s.spec as unknown as ScheduleSpec,
  deviceIds: s.deviceIds,
  collectionId: s.collectionId,
  viewerId: s.viewerId,
  type: s.type,
  access: s.access,
  reason: s.reason,
  ticketRef: s.ticketRef,
  remindMinutes: s.remindMinutes,
  askApproval: s.askApproval,
  nextAt: isoOrNull(s.nextAt),
  lastPlannedAt: isoOrNull(s.lastPlannedAt),
  version: s.version,
  createdAt: s.createdAt.toISOString(),
  updatedAt: s.updatedAt.toISOString(),
});

export interface OccurrenceView {
  at: string;
  outcome: string;
  reason: string | null;
  targets: OccurrenceTarget[];
  decidedAt: string;
}

/** The first occurrence after `now`, or a 400 on the timing saying none comes. */
function firstAfter(spec: ScheduleSpec, now: Date): Date {
  const [next] = nextOccurrences(spec, now, 1);
  if (!next) {
    const message = spec.endsAt ? 'leaves no occurrence after now: endsAt has passed' : 'leaves no occurrence after now';
    throw new ValidationFailed(`invalid body: timing.endsAt: ${message}`, [{ path: 'timing.endsAt', message }]);
  }
  return next;
}

/**
 * Recurring schedules: their definition, state and timers, and what became of their occurrences.
 * A schedule runs as its owner (the caller that created it), with the owner's grants as they are at
 * each occurrence. Who may do what:
 * - create: a caller with session.request over every device (or the collection) it names, and
 *   session.request_on_behalf there for another viewer — the checks intake makes, made now too so
 *   a schedule that could never run is refused at once;
 * - read: its owner, a caller with session.read over all collections, or over its collection;
 * - change what it asks for (PATCH): its owner only, since the occurrences run with the owner's
 *   grants;
 * - pause, resume, delete: its owner, or a caller with session.cancel over all collections.
 * Every change is audited on the stream `schedule:<id>`, in the change's transaction, with the
 * timers it arms (outbox).
 */
@Injectable()
export class SchedulesService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly intake: SessionIntake,
    private readonly relay: OutboxRelay,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  async create(caller: PrincipalFacts, body: CreateScheduleBody): Promise<ScheduleView & { upcoming: PreviewedOccurrence[] }> {
    const spec = body.timing;
    await this.checkTargets(caller, body.deviceIds ?? null, body.collectionId ?? null, body.viewerId ?? caller.id);
    const now = new Date();
    const nextAt = firstAfter(spec, now);
    const saved = await this.dataSource.transaction(async (tx) => {
      const s = await tx.getRepository(Schedule).save(
        tx.getRepository(Schedule).create({
          name: body.name,
          ownerId: caller.id,
          spec: spec as unknown as Record<string, unknown>,
          deviceIds: body.deviceIds ?? null,
          collectionId: body.collectionId ?? null,
          viewerId: body.viewerId ?? null,
          type: body.type,
          access: body.access,
          reason: body.reason ?? null,
          ticketRef: body.ticketRef ?? null,
          remindMinutes: body.remindMinutes ?? null,
          askApproval: body.askApproval ?? false,
          state: 'active',
          // Occurrences before the schedule existed are not caught up.
          lastPlannedAt: now,
          nextAt,
          version: 1,
        }),
      );
      await this.audit(tx, caller, s, 'schedule.created', { definition: definitionOf(view(s)), nextAt: nextAt.toISOString() });
      await writeOutbox(tx, scheduleTimerRows({ id: s.id, nextAt, remindMinutes: s.remindMinutes }));
      return s;
    });
    this.relay.kick();
    return { ...view(saved), upcoming: previewOccurrences(spec, now, 5) };
  }

  async get(caller: PrincipalFacts, id: string): Promise<ScheduleView> {
    return view(await this.readable(caller, this.dataSource.manager, id));
  }

  async list(caller: PrincipalFacts, q: { state?: string; limit: number; cursor?: string }): Promise<Page<ScheduleView>> {
    const qb = this.dataSource.getRepository(Schedule).createQueryBuilder('c');
    const scope = scopeOf(caller.grants, 'session.read');
    if (scope !== null) {
      qb.where('(c.ownerId = :me OR c.collectionId = ANY(CAST(:scope AS uuid[])))', { me: caller.id, scope });
    }
    if (q.state) qb.andWhere('c.state = :state', { state: q.state });
    else qb.andWhere(`c.state <> 'deleted'`);
    return keysetPage(qb, 'c', q, (rows) => rows.map(view));
  }

  /** The next `count` occurrences, in UTC and on the schedule's clock; none while it is ended or deleted. */
  async preview(caller: PrincipalFacts, id: string, count: number): Promise<{ timeZone: string; items: PreviewedOccurrence[] }> {
    const s = await this.readable(caller, this.dataSource.manager, id);
    const spec = s.spec as unknown as ScheduleSpec;
    const over = s.state === 'ended' || s.state === 'deleted';
    return { timeZone: displayZone(spec), items: over ? [] : previewOccurrences(spec, new Date(), count) };
  }

  /** What became of its occurrences, newest first. */
  async runs(
    caller: PrincipalFacts,
    id: string,
    q: { limit: number; before?: string },
  ): Promise<{ items: OccurrenceView[]; nextBefore: string | null }> {
    await this.readable(caller, this.dataSource.manager, id);
    const qb = this.dataSource
      .getRepository(ScheduleOccurrence)
      .createQueryBuilder('o')
      .where('o.scheduleId = :id', { id })
      .orderBy('o.at', 'DESC')
      .limit(q.limit + 1);
    if (q.before) qb.andWhere('o.at < :before', { before: new Date(q.before) });
    const rows = await qb.getMany();
    const page = rows.slice(0, q.limit);
    return {
      items: page.map((o) => ({
        at: o.at.toISOString(),
        outcome: o.outcome,
        reason: o.reason,
        targets: o.targets,
        decidedAt: o.decidedAt.toISOString(),
      })),
      nextBefore: rows.length > q.limit ? (page.at(-1)?.at.toISOString() ?? null) : null,
    };
  }

  /** Changes what the schedule asks for or when; the timing starts anew from now (no catch-up of the past under it). */
  async update(caller: PrincipalFacts, id: string, body: UpdateScheduleBody): Promise<ScheduleView> {
    const result = await this.dataSource.transaction(async (tx) => {
      const s = await this.readable(caller, tx, id, true);
      if (s.ownerId !== caller.id) {
        throw new Forbidden(
          `only the owner may change what schedule ${id} asks for (it runs with the owner's grants); pause or delete it instead`,
        );
      }
      if (s.state === 'deleted') throw new Conflict('the schedule is deleted', { state: s.state });
      const targetsChange = body.deviceIds !== undefined || body.collectionId !== undefined || body.viewerId !== undefined;
      const next: { [K in keyof Schedule]?: Schedule[K] | undefined } = {
        name: body.name,
        spec: body.timing,
        deviceIds: body.deviceIds ?? (body.collectionId !== undefined ? null : undefined),
        collectionId: body.collectionId ?? (body.deviceIds !== undefined ? null : undefined),
        viewerId: body.viewerId,
        type: body.type,
        access: body.access,
        reason: body.reason,
        ticketRef: body.ticketRef,
        remindMinutes: body.remindMinutes,
        askApproval: body.askApproval ?? (body.remindMinutes === null ? false : undefined),
      };
      const changes = changesOf(s, next);
      if ((next.askApproval ?? s.askApproval) && (next.remindMinutes === undefined ? s.remindMinutes : next.remindMinutes) === null) {
        const message = 'needs remindMinutes (the user is asked with the reminder)';
        throw new ValidationFailed(`invalid body: askApproval: ${message}`, [{ path: 'askApproval', message }]);
      }
      if (Object.keys(changes).length === 0) return { s, changed: false };
      if (targetsChange) {
        const deviceIds = next.deviceIds !== undefined ? next.deviceIds : s.deviceIds;
        const collectionId = next.collectionId !== undefined ? next.collectionId : s.collectionId;
        const viewerId = next.viewerId !== undefined ? next.viewerId : s.viewerId;
        await this.checkTargets(caller, deviceIds, collectionId, viewerId ?? caller.id);
      }
      const now = new Date();
      Object.assign(s, pickChanged(next, changes));
      const rearm = (changes.spec !== undefined || changes.remindMinutes !== undefined) && s.state !== 'paused';
      if (changes.spec && s.state !== 'paused') {
        s.nextAt = firstAfter(s.spec as unknown as ScheduleSpec, now);
        s.lastPlannedAt = now;
        if (s.state === 'ended') s.state = 'active';
      }
      s.version += 1;
      const saved = await tx.getRepository(Schedule).save(s);
      await this.audit(tx, caller, saved, 'schedule.updated', { changes: timingNamed(changes), nextAt: isoOrNull(saved.nextAt) });
      if (rearm && saved.state === 'active') {
        await writeOutbox(tx, scheduleTimerRows({ id: saved.id, nextAt: saved.nextAt, remindMinutes: saved.remindMinutes }));
      }
      return { s: saved, changed: true };
    });
    if (result.changed) this.relay.kick();
    return view(result.s);
  }

  /** Stops the occurrences; those that fall while it is paused are not run, then or later. */
  pause(caller: PrincipalFacts, id: string): Promise<ScheduleView> {
    return this.move(caller, id, 'paused', ['active'], () => ({ nextAt: null }));
  }

  /** Starts the occurrences again from now on. */
  resume(caller: PrincipalFacts, id: string): Promise<ScheduleView> {
    return this.move(caller, id, 'active', ['paused'], (s, now) => {
      const [nextAt] = nextOccurrences(s.spec as unknown as ScheduleSpec, now, 1);
      return nextAt ? { nextAt, lastPlannedAt: now } : { nextAt: null, lastPlannedAt: now, state: 'ended' };
    });
  }

  /** Deletes it: no occurrence runs any more; the schedule stays readable with its occurrences and audit trail. */
  async remove(caller: PrincipalFacts, id: string): Promise<void> {
    await this.move(caller, id, 'deleted', ['active', 'paused', 'ended'], () => ({ nextAt: null }));
  }

  private async move(
    caller: PrincipalFacts,
    id: string,
    to: string,
    from: string[],
    patch: (s: Schedule, now: Date) => Partial<Schedule>,
  ): Promise<ScheduleView> {
    const saved = await this.dataSource.transaction(async (tx) => {
      const s = await this.readable(caller, tx, id, true);
      if (s.ownerId !== caller.id && scopeOf(caller.grants, 'session.cancel') !== null) {
        throw new Forbidden(
          `${caller.name} may not manage schedule ${id}: it is not the owner and holds session.cancel over some collections only`,
        );
      }
      if (!from.includes(s.state)) throw new Conflict(`the schedule is ${s.state}`, { state: s.state });
      const was = s.state;
      Object.assign(s, { state: to, ...patch(s, new Date()) });
      s.version += 1;
      const out = await tx.getRepository(Schedule).save(s);
      const action = to === 'active' ? 'schedule.resumed' : to === 'paused' ? 'schedule.paused' : 'schedule.deleted';
      await this.audit(tx, caller, out, action, { from: was, to: out.state, nextAt: isoOrNull(out.nextAt) });
      if (out.state === 'active') {
        await writeOutbox(tx, scheduleTimerRows({ id: out.id, nextAt: out.nextAt, remindMinutes: out.remindMinutes }));
      }
      return out;
    });
    this.relay.kick();
    return view(saved);
  }

  /** The schedule when the caller may read it (else 404, so ids out of scope cannot be probed); `lock` for a change. */
  private async readable(caller: PrincipalFacts, manager: EntityManager, id: string, lock = false): Promise<Schedule> {
    const qb = manager.getRepository(Schedule).createQueryBuilder('c').where('c.id = :id', { id });
    if (lock) qb.setLock('pessimistic_write');
    const s = await qb.getOne();
    const readable =
      s !== null &&
      (s.ownerId === caller.id ||
        scopeOf(caller.grants, 'session.read') === null ||
        (s.collectionId !== null && hasPermission(caller.grants, 'session.read', [s.collectionId])));
    if (!s || !readable) throw new NotFound('schedule', id);
    return s;
  }

  /**
   * What intake will check at each occurrence, checked now: a schedule on devices the caller may
   * not ask for would only ever be refused.
   */
  private async checkTargets(caller: PrincipalFacts, deviceIds: string[] | null, collectionId: string | null, viewerId: string) {
    for (const deviceId of deviceIds ?? []) await this.intake.check(caller, deviceId, viewerId);
    if (collectionId === null) return;
    const [c] = await this.dataSource.query<{ id: string }[]>(`SELECT id FROM collections WHERE id = $1::uuid`, [collectionId]);
    if (!c || !hasPermission(caller.grants, 'session.request', [collectionId])) throw new NotFound('collection', collectionId);
    if (viewerId === caller.id) return;
    if (!hasPermission(caller.grants, 'session.request_on_behalf', [collectionId])) {
      throw new Forbidden(`${caller.name} may not request sessions on behalf of another viewer`);
    }
    const [v] = await this.dataSource.query<{ kind: string }[]>(`SELECT kind FROM principals WHERE id = $1::uuid`, [viewerId]);
    if (!v) throw new UnprocessableRequest(`viewer ${viewerId} is not a known principal`);
    if (v.kind === 'group') throw new UnprocessableRequest('the viewer must be a user or service, not a group');
  }

  private async audit(tx: EntityManager, caller: PrincipalFacts, s: Schedule, action: string, data: Record<string, unknown>) {
    await appendAudit(tx, this.config.audit.hmacKey, [
      {
        stream: scheduleStream(s.id),
        actorId: caller.id,
        actorKind: 'principal',
        action,
        outcome: 'succeeded',
        viewerId: s.viewerId,
        ticketRef: s.ticketRef,
        reason: s.reason,
        data: { scheduleId: s.id, name: s.name, ...data },
      },
    ]);
  }
}

/** What a schedule asks for, as its audit event records it. */
function definitionOf(v: ScheduleView): Record<string, unknown> {
  const { id: _id, state: _s, nextAt: _n, lastPlannedAt: _l, version: _v, createdAt: _c, updatedAt: _u, ...definition } = v;
  return definition;
}

/** Changes as audited: `spec` is called timing, as the API calls it. */
function timingNamed(changes: Changes): Changes {
  const { spec, ...rest } = changes;
  return spec ? { ...rest, timing: spec } : rest;
}
