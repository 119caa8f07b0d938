import { Queue } from 'bullmq';
import type { DataSource } from 'typeorm';
import { loadConfig, RcflowConfig } from '../../libs/config/src';
import { createDataSource } from '../../libs/database/src';
import { verifyAudit } from '../../libs/audit/src';
import { OutboxRelay, QueueName, redisOptionsFromUrl } from '../../libs/jobs/src';
import { EXPIRY_REASONS, ScheduleSpec } from '../../libs/schedules/src';
import { SessionIntake, SessionTransitions } from '../../libs/sessions/src';
import { ScheduleOccurrenceHandler } from '../../libs/workflow/src/schedules/schedule-occurrence.handler';
import { ReconciliationSweep } from '../../libs/workflow/src/reconciliation-sweep.service';
import { SHARED_REDIS_URL, TEST_AUDIT_KEY, freshDatabase, queuePrefix } from '../support/env';
import { seedWorld } from '../support/fixtures';

/**
 * The occurrence materializer on real PostgreSQL, called as its timer's job would call it (the
 * processes, timers and Redis around it are in test/e2e/recurring-schedules.e2e-spec.ts): what one
 * occurrence asks for, exactly once however often it runs, the owner's grants as they are when it
 * falls, and what becomes of occurrences missed while nothing ran.
 */
describe('schedule occurrences', () => {
  let config: RcflowConfig;
  let ds: DataSource;
  let handler: ScheduleOccurrenceHandler;
  // The outbox rows are what the test reads; the relay that would move them to Redis is not under test.
  const relay = { kick: () => undefined } as unknown as OutboxRelay;

  beforeAll(async () => {
    config = loadConfig({
      DATABASE_URL: await freshDatabase('occurrences'),
      AUDIT_HMAC_KEY: TEST_AUDIT_KEY,
      DB_POOL_SIZE: '10',
      SCHEDULE_SKIP_GRACE_SECONDS: '60',
    });
    ds = createDataSource(config.database);
    await ds.initialize();
    handler = new ScheduleOccurrenceHandler(ds, new SessionIntake(ds, relay, config), relay, config);
  });
  afterAll(async () => {
    await ds?.destroy();
  });

  const MINUTE = 60_000;
  /** A schedule written as the API writes it, with its next occurrence at `nextAt`. */
  async function schedule(
    world: { viewerId: string; deviceId: string },
    spec: Partial<ScheduleSpec> & { startsAt: string },
    progress: { lastPlannedAt: Date | null; nextAt: Date },
  ): Promise<string> {
    const timing = { windowMinutes: 10, missedPolicy: 'skip', intervalMinutes: 60, ...spec };
    const [row] = await ds.query(
      `INSERT INTO schedules (name, owner_id, spec, device_ids, type, access, reason, state, last_planned_at, next_at)
       VALUES ('patch night', $1, $2, $3, 'remote-control', 'full', 'maintenance', 'active', $4, $5) RETURNING id`,
      [world.viewerId, JSON.stringify(timing), [world.deviceId], progress.lastPlannedAt, progress.nextAt],
    );
    return row.id;
  }
  const state = async (id: string) => {
    const [s] = await ds.query(`SELECT state, last_planned_at, next_at, version FROM schedules WHERE id = $1`, [id]);
    const occurrences = await ds.query(`SELECT at, outcome, reason, targets FROM schedule_occurrences WHERE schedule_id = $1 ORDER BY at`, [
      id,
    ]);
    const sessions = await ds.query(
      `SELECT id, state, device_id, requester_id, occurrence_at, not_before, not_after FROM sessions WHERE schedule_id = $1 ORDER BY occurrence_at`,
      [id],
    );
    const timers = await ds.query(`SELECT job_id, run_at FROM outbox WHERE queue = $1 AND payload->>'scheduleId' = $2 ORDER BY run_at`, [
      QueueName.Schedules,
      id,
    ]);
    const events = await ds.query(`SELECT action, outcome, reason, data FROM audit_events WHERE stream = $1 ORDER BY seq`, [
      `schedule:${id}`,
    ]);
    return { schedule: s, occurrences, sessions, timers, events };
  };

  it('asks for the session of an occurrence as the owner, names the schedule and time, records it and arms the next', async () => {
    const world = await seedWorld(ds);
    const at = new Date(Math.floor(Date.now() / 1000) * 1000 - 30_000); // half a minute ago: late, but within the grace
    const id = await schedule(
      world,
      { startsAt: new Date(at.getTime() - 3 * 60 * MINUTE).toISOString() },
      { lastPlannedAt: new Date(at.getTime() - 60 * MINUTE), nextAt: at },
    );
    expect(await handler.handle(id, at.toISOString())).toBeUndefined();
    const s = await state(id);
    expect(s.occurrences).toHaveLength(1);
    expect(s.occurrences[0]).toMatchObject({ at, outcome: 'requested', reason: null });
    expect(s.sessions).toHaveLength(1);
    const [session] = s.sessions;
    expect(session).toMatchObject({
      state: 'scheduled',
      device_id: world.deviceId,
      requester_id: world.viewerId,
      occurrence_at: at,
      not_before: at,
      not_after: new Date(at.getTime() + 10 * MINUTE),
    });
    expect(s.occurrences[0].targets).toEqual([{ deviceId: world.deviceId, sessionId: session.id, refused: null }]);
    const next = new Date(at.getTime() + 60 * MINUTE);
    expect(s.schedule).toMatchObject({ state: 'active', last_planned_at: at, next_at: next, version: 2 });
    expect(s.timers).toEqual([{ job_id: `occurrence.${id}.${next.getTime()}`, run_at: next }]);
    expect(s.events.map((e: { action: string }) => e.action)).toEqual(['schedule.occurrence_requested']);
    const [first] = await ds.query(`SELECT action, data FROM audit_events WHERE stream = $1 AND seq = 1`, [`session:${session.id}`]);
    expect(first).toMatchObject({ action: 'session.scheduled', data: { scheduleId: id, occurrenceAt: at.toISOString() } });
    // The session's own job: due at once (its time has come).
    expect(await ds.query(`SELECT run_at FROM outbox WHERE job_id = $1`, [`advance.${session.id}`])).toEqual([{ run_at: at }]);
  });

  it('decides an occurrence once when its timer runs twice at the same time, and again later', async () => {
    const world = await seedWorld(ds);
    const at = new Date(Math.floor(Date.now() / MINUTE) * MINUTE);
    const id = await schedule(
      world,
      { startsAt: new Date(at.getTime() - 60 * MINUTE).toISOString() },
      { lastPlannedAt: new Date(at.getTime() - 60 * MINUTE), nextAt: at },
    );
    const other = new ScheduleOccurrenceHandler(ds, new SessionIntake(ds, relay, config), relay, config);
    await Promise.all([handler.handle(id, at.toISOString()), other.handle(id, at.toISOString()), handler.handle(id, at.toISOString())]);
    await handler.handle(id, at.toISOString()); // a late duplicate: the timer is stale now
    const s = await state(id);
    expect(s.occurrences).toHaveLength(1);
    expect(s.sessions).toHaveLength(1);
    expect(s.events).toHaveLength(1);
    expect(s.schedule.version).toBe(2);
    expect((await verifyAudit(ds, TEST_AUDIT_KEY)).problems).toEqual([]);
  });

  it("refuses the occurrence with intake's reason when the owner's role was revoked after booking", async () => {
    const world = await seedWorld(ds);
    const at = new Date(Math.floor(Date.now() / MINUTE) * MINUTE);
    const id = await schedule(
      world,
      { startsAt: new Date(at.getTime() - 60 * MINUTE).toISOString() },
      { lastPlannedAt: new Date(at.getTime() - 60 * MINUTE), nextAt: at },
    );
    await ds.query(`DELETE FROM role_assignments WHERE principal_id = $1`, [world.viewerId]);
    await handler.handle(id, at.toISOString());
    const s = await state(id);
    expect(s.sessions).toEqual([]);
    expect(s.occurrences).toEqual([
      {
        at,
        outcome: 'refused',
        reason: `${world.viewerName} may not request sessions`,
        targets: [{ deviceId: world.deviceId, sessionId: null, refused: `${world.viewerName} may not request sessions` }],
      },
    ]);
    expect(s.events[0]).toMatchObject({
      action: 'schedule.occurrence_refused',
      outcome: 'refused',
      reason: `${world.viewerName} may not request sessions`,
    });
    // The schedule goes on: the next occurrence is checked again when it falls.
    expect(s.schedule.next_at).toEqual(new Date(at.getTime() + 60 * MINUTE));
  });

  it('refuses it when the owner was disabled', async () => {
    const world = await seedWorld(ds);
    const at = new Date(Math.floor(Date.now() / MINUTE) * MINUTE);
    const id = await schedule(
      world,
      { startsAt: new Date(at.getTime() - 60 * MINUTE).toISOString() },
      { lastPlannedAt: new Date(at.getTime() - 60 * MINUTE), nextAt: at },
    );
    await ds.query(`UPDATE principals SET disabled = true WHERE id = $1`, [world.viewerId]);
    await handler.handle(id, at.toISOString());
    expect((await state(id)).occurrences.map((o: { outcome: string; reason: string }) => [o.outcome, o.reason])).toEqual([
      ['refused', `the owner ${world.viewerName} is disabled`],
    ]);
  });

  it('after downtime, policy skip: the occurrences missed by more than the grace expire, none runs', async () => {
    const world = await seedWorld(ds);
    const now = Date.now();
    const hour = Math.floor(now / (60 * MINUTE)) * 60 * MINUTE;
    // Hourly; rcflow was down for the last three occurrences (the last one more than a minute ago).
    const last = new Date(hour - 3 * 60 * MINUTE);
    const id = await schedule(
      world,
      { startsAt: new Date(hour - 10 * 60 * MINUTE).toISOString(), windowMinutes: 30 },
      { lastPlannedAt: last, nextAt: new Date(hour - 2 * 60 * MINUTE) },
    );
    await handler.handle(id, new Date(hour - 2 * 60 * MINUTE).toISOString(), () => Math.max(now, hour + 2 * MINUTE));
    const s = await state(id);
    expect(s.sessions).toEqual([]);
    expect(s.occurrences.map((o: { outcome: string; reason: string }) => [o.outcome, o.reason])).toEqual([
      ['expired', EXPIRY_REASONS.skipped],
      ['expired', EXPIRY_REASONS.skipped],
      ['expired', EXPIRY_REASONS.skipped],
    ]);
    expect(s.schedule.next_at).toEqual(new Date(hour + 60 * MINUTE));
  });

  it('policy skip: a timer late by less than SCHEDULE_SKIP_GRACE_SECONDS (a busy minute) still runs its occurrence', async () => {
    const world = await seedWorld(ds);
    const at = new Date(Math.floor(Date.now() / 1000) * 1000 - 2 * MINUTE); // two minutes late: past 60 s, within 300 s
    const lenient = { ...config, schedules: { skipGraceSeconds: 300 } };
    const busy = new ScheduleOccurrenceHandler(ds, new SessionIntake(ds, relay, lenient), relay, lenient);
    const id = await schedule(
      world,
      { startsAt: new Date(at.getTime() - 60 * MINUTE).toISOString() },
      { lastPlannedAt: new Date(at.getTime() - 60 * MINUTE), nextAt: at },
    );
    await busy.handle(id, at.toISOString());
    expect((await state(id)).occurrences.map((o: { outcome: string }) => o.outcome)).toEqual(['requested']);
    const strict = await schedule(
      world,
      { startsAt: new Date(at.getTime() - 60 * MINUTE).toISOString() },
      { lastPlannedAt: new Date(at.getTime() - 60 * MINUTE), nextAt: at },
    );
    await handler.handle(strict, at.toISOString());
    expect((await state(strict)).occurrences.map((o: { outcome: string; reason: string }) => [o.outcome, o.reason])).toEqual([
      ['expired', EXPIRY_REASONS.skipped],
    ]);
  });

  it('after downtime, policy run_once: the latest occurrence still inside its window runs, the others expire with their reason', async () => {
    const world = await seedWorld(ds);
    const now = Date.now();
    const t0 = Math.floor(now / MINUTE) * MINUTE;
    // Every 10 minutes with a 15-minute window; down for the last 35 minutes: 4 occurrences missed.
    const due = [-35, -25, -15, -5].map((m) => new Date(t0 + m * MINUTE));
    const id = await schedule(
      world,
      { startsAt: new Date(t0 - 95 * MINUTE).toISOString(), intervalMinutes: 10, windowMinutes: 15, missedPolicy: 'run_once' },
      { lastPlannedAt: new Date(t0 - 45 * MINUTE), nextAt: due[0] },
    );
    await handler.handle(id, due[0].toISOString(), () => t0);
    const s = await state(id);
    expect(s.occurrences.map((o: { at: Date; outcome: string; reason: string | null }) => [o.at, o.outcome, o.reason])).toEqual([
      [due[0], 'expired', EXPIRY_REASONS.windowPassed],
      [due[1], 'expired', EXPIRY_REASONS.windowPassed],
      [due[2], 'expired', EXPIRY_REASONS.superseded],
      [due[3], 'requested', null],
    ]);
    expect(s.sessions.map((x: { occurrence_at: Date }) => x.occurrence_at)).toEqual([due[3]]);
    expect(s.schedule.next_at).toEqual(new Date(t0 + 5 * MINUTE));
  });

  it('does nothing for a stale timer, a paused schedule, and waits when the timer fired early', async () => {
    const world = await seedWorld(ds);
    const at = new Date(Math.floor(Date.now() / MINUTE) * MINUTE);
    const id = await schedule(world, { startsAt: new Date(at.getTime() - 60 * MINUTE).toISOString() }, { lastPlannedAt: null, nextAt: at });
    await handler.handle(id, new Date(at.getTime() - 60 * MINUTE).toISOString()); // an older timer
    await ds.query(`UPDATE schedules SET state = 'paused' WHERE id = $1`, [id]);
    await handler.handle(id, at.toISOString());
    expect((await state(id)).occurrences).toEqual([]);
    await ds.query(`UPDATE schedules SET state = 'active' WHERE id = $1`, [id]);
    expect(await handler.handle(id, at.toISOString(), () => at.getTime() - 5000)).toEqual({ runAt: at });
    const s = await state(id);
    expect(s.occurrences).toEqual([]);
    expect(s.schedule.version).toBe(1);
  });

  it('ends a schedule whose last occurrence was decided', async () => {
    const world = await seedWorld(ds);
    const at = new Date(Math.floor(Date.now() / MINUTE) * MINUTE);
    const id = await schedule(
      world,
      { startsAt: at.toISOString(), endsAt: new Date(at.getTime() + 30 * MINUTE).toISOString() },
      { lastPlannedAt: null, nextAt: at },
    );
    await handler.handle(id, at.toISOString());
    const s = await state(id);
    expect(s.schedule).toMatchObject({ state: 'ended', next_at: null });
    expect(s.timers).toEqual([]);
    expect(s.events.map((e: { action: string }) => e.action)).toEqual(['schedule.occurrence_requested', 'schedule.ended']);
  });

  it('the sweep re-arms a timer Redis lost, from next_at, and leaves a live one alone', async () => {
    const queue = new Queue(QueueName.Schedules, {
      prefix: queuePrefix('occurrences'),
      connection: { ...redisOptionsFromUrl(SHARED_REDIS_URL), maxRetriesPerRequest: null, retryStrategy: () => 100 },
    });
    try {
      await ds.query(`UPDATE schedules SET state = 'paused'`); // the other tests' schedules
      const world = await seedWorld(ds);
      const soon = new Date(Math.ceil(Date.now() / 1000) * 1000 + 2000);
      const lost = await schedule(world, { startsAt: soon.toISOString() }, { lastPlannedAt: null, nextAt: soon });
      const live = await schedule(world, { startsAt: soon.toISOString() }, { lastPlannedAt: null, nextAt: soon });
      await queue.add(
        'schedule.occurrence',
        { scheduleId: live, at: soon.toISOString() },
        { jobId: `occurrence.${live}.${soon.getTime()}`, delay: 60_000 },
      );
      const sweep = new ReconciliationSweep(ds, new SessionTransitions(ds, config), queue, queue, queue, config);
      expect(await sweep.sweepSchedules()).toBe(1);
      expect((await state(lost)).timers).toEqual([{ job_id: `occurrence.${lost}.${soon.getTime()}`, run_at: soon }]);
      expect((await state(live)).timers).toEqual([]);
      // The rebuilt row is in the outbox now: a second sweep does not add another.
      expect(await sweep.sweepSchedules()).toBe(0);

      // Behind more than a page of schedules with live timers (a burst due in the same minute), lost ones are found too.
      await ds.query(`DELETE FROM outbox`);
      await ds.query(`UPDATE schedules SET state = 'paused'`);
      const burst = soon.getTime() + 1000;
      const ids = (
        await ds.query(
          `INSERT INTO schedules (name, owner_id, spec, device_ids, type, access, state, next_at)
           SELECT 'burst', $1, '{}', $2, 'remote-control', 'full', 'active', $3::timestamptz + make_interval(secs => g / 1000.0)
             FROM generate_series(1, 520) g RETURNING id, next_at`,
          [world.viewerId, [world.deviceId], new Date(burst)],
        )
      ).sort((a: { next_at: Date }, b: { next_at: Date }) => a.next_at.getTime() - b.next_at.getTime());
      await queue.addBulk(
        ids.slice(0, 517).map((r: { id: string; next_at: Date }) => ({
          name: 'schedule.occurrence',
          data: { scheduleId: r.id, at: r.next_at.toISOString() },
          opts: { jobId: `occurrence.${r.id}.${r.next_at.getTime()}`, delay: 60_000 },
        })),
      );
      expect(await sweep.sweepSchedules()).toBe(3);
      const rearmed = await ds.query(`SELECT payload->>'scheduleId' AS id FROM outbox ORDER BY run_at`);
      expect(rearmed.map((r: { id: string }) => r.id)).toEqual(ids.slice(517).map((r: { id: string }) => r.id));
    } finally {
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    }
  });
});
