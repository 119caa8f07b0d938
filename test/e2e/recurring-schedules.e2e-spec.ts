import IORedis from 'ioredis';
import { RcflowProcess, waitUntil } from '../support/processes';
import { OperatorWorld, Stack, addDevice, seedOperatorWorld, startStack } from '../support/stack';
import { tearDown } from '../support/teardown';

jest.setTimeout(180_000);

type Json = Record<string, any>;

/**
 * Recurring schedules on real processes (an API, two workers, loopback agents, PostgreSQL, a
 * private Redis): defined and previewed through the API, refused with the field at fault, and each
 * occurrence decided exactly once — by two workers at once, after Redis lost its timers, after a
 * worker was killed at the due time — with the owner's grants as they are when it falls.
 */
describe('recurring schedules end to end', () => {
  let stack: Stack;
  let starting: Promise<Stack> | undefined;
  let world: OperatorWorld;
  let secondWorker: RcflowProcess | undefined;

  beforeAll(async () => {
    stack = await (starting = startStack('schedules', { AGENT_TRANSPORT: 'loopback', JOB_LOCK_MS: '2000', SWEEP_STALE_MS: '1000' }));
    world = await seedOperatorWorld(stack.admin);
    secondWorker = RcflowProcess.start('worker', stack.env);
    await secondWorker.waitFor('worker running', 90_000);
  });
  afterAll(() =>
    tearDown({
      worker: () => secondWorker?.stop('SIGKILL'),
      stack: async () => (stack ?? (await starting?.catch(() => undefined)))?.stop(),
    }),
  );

  const count = async (sql: string, params: unknown[] = []) => (await stack.ds.query<{ n: number }[]>(sql, params))[0].n;
  const schedules = () => count(`SELECT count(*)::int AS n FROM schedules`);
  /** A schedule through the API with one occurrence only, `inMs` from now (every 5 minutes, ending a minute after it starts). */
  const oneShot = async (api = stack.admin, deviceId: string, inMs: number) => {
    const startsAt = new Date(Math.ceil((Date.now() + inMs) / 1000) * 1000).toISOString();
    const r = await api.post('/v1/schedules', {
      name: 'one shot',
      timing: { intervalMinutes: 5, startsAt, endsAt: new Date(Date.parse(startsAt) + 60_000).toISOString() },
      deviceIds: [deviceId],
      type: 'remote-control',
      access: 'full',
      reason: 'maintenance',
    });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ state: 'active', nextAt: new Date(startsAt).toISOString() });
    return { id: r.body.id as string, at: startsAt };
  };
  const runs = async (id: string) => ((await stack.admin.get(`/v1/schedules/${id}/runs`)).body.items as Json[]).reverse();
  const decided = (id: string, n: number, timeoutMs = 30_000) =>
    waitUntil(async () => ((await runs(id)).length >= n ? true : null), timeoutMs, `${n} occurrence(s) of ${id} decided`);
  const sessionsOf = (id: string) =>
    stack.ds.query<{ id: string; occurrence_at: Date; requester_id: string }[]>(
      `SELECT id, occurrence_at, requester_id FROM sessions WHERE schedule_id = $1 ORDER BY occurrence_at`,
      [id],
    );

  it('creates a weekly schedule in a European time zone and previews its next five occurrences in local time and UTC', async () => {
    const device = await addDevice(stack.admin, world.ids.desks, 'SCHED-1');
    const r = await stack.admin.post('/v1/schedules', {
      name: 'printer help',
      timing: { cron: '0 14 * * 4', timeZone: 'Europe/Amsterdam' },
      deviceIds: [device],
      type: 'remote-assistance',
      access: 'full',
      reason: 'new printer',
    });
    expect(r.status).toBe(201);
    expect(r.headers.get('location')).toBe(`/v1/schedules/${r.body.id}`);
    expect(r.body).toMatchObject({ state: 'active', timing: { windowMinutes: 30, missedPolicy: 'skip' }, deviceIds: [device] });
    expect(r.body.upcoming).toHaveLength(5);
    const preview = await stack.admin.get(`/v1/schedules/${r.body.id}/occurrences?count=5`);
    expect(preview.status).toBe(200);
    expect(preview.body.timeZone).toBe('Europe/Amsterdam');
    const items = preview.body.items as { at: string; local: string }[];
    expect(items).toHaveLength(5);
    expect(items[0].at).toBe(r.body.nextAt);
    for (const { at, local } of items) {
      // Thursday 14:00 on Amsterdam's clock: 13:00 UTC in winter (+01:00), 12:00 UTC in summer (+02:00).
      expect(local).toMatch(/T14:00(:00)?\+0[12]:00$/);
      const offset = local.endsWith('+01:00') ? 1 : 2;
      expect(new Date(at).getUTCHours()).toBe(14 - offset);
      expect(new Date(at).getUTCDay()).toBe(4);
    }
    expect((await stack.admin.get(`/v1/schedules/${r.body.id}`)).body).toMatchObject({ id: r.body.id, name: 'printer help' });
  });

  it.each([
    ['an invalid cron expression', { cron: '61 * * * *', timeZone: 'UTC' }, 'timing.cron', 'got value 61 expected range 0-59'],
    ['an unknown time zone', { cron: '0 2 * * 2', timeZone: 'Mars/Olympus_Mons' }, 'timing.timeZone', 'is not an IANA time zone name'],
    ['a window longer than the interval', { intervalMinutes: 10, windowMinutes: 30 }, 'timing.windowMinutes', 'must not be longer'],
    [
      'a schedule whose next occurrence never comes',
      { cron: '0 2 * * 2', timeZone: 'UTC', startsAt: '2020-01-01T00:00:00Z', endsAt: '2020-02-01T00:00:00Z' },
      'timing.endsAt',
      'no occurrence after now',
    ],
    ['one running more often than every 5 minutes', { cron: '*/2 * * * *', timeZone: 'UTC' }, 'timing.cron', 'at most every 5 minutes'],
  ])('refuses %s with a 400 naming the field, and stores nothing', async (_what, timing, path, words) => {
    const device = await addDevice(stack.admin, world.ids.desks, `SCHED-BAD-${Math.random().toString(36).slice(2, 8)}`);
    const before = await schedules();
    const r = await stack.admin.post('/v1/schedules', { name: 'bad', timing, deviceIds: [device], type: 'remote-control', access: 'full' });
    expect(r.status).toBe(400);
    const issue = (r.body.error.details as { path: string; message: string }[]).find((i) => i.path === path);
    expect(issue?.message ?? '').toContain(words);
    expect(await schedules()).toBe(before);
  });

  it('refuses devices and a collection together, and a device out of the caller’s scope as unknown', async () => {
    const device = await addDevice(stack.admin, world.ids.desks, 'SCHED-2');
    const server = await addDevice(stack.admin, world.ids.servers, 'SCHED-SRV');
    const before = await schedules();
    const body = { name: 'x', timing: { cron: '0 2 * * 2', timeZone: 'UTC' }, type: 'remote-control', access: 'full' };
    const both = await stack.admin.post('/v1/schedules', { ...body, deviceIds: [device], collectionId: world.ids.desks });
    expect(both.status).toBe(400);
    expect(both.body.error.details).toEqual([{ path: 'collectionId', message: 'give deviceIds or collectionId, not both' }]);
    const bob = stack.admin.as(world.keys.bob); // remote_tools_operator over desks only
    expect((await bob.post('/v1/schedules', { ...body, deviceIds: [server] })).status).toBe(404);
    expect(await schedules()).toBe(before);
  });

  it('an every-second schedule makes exactly one session per occurrence with two workers at work', async () => {
    const device = await addDevice(stack.admin, world.ids.desks, 'SCHED-3');
    const n = 6;
    const t0 = Math.ceil(Date.now() / 1000) * 1000 + 2000;
    // Faster than the API allows (every 5 minutes at most): written as the API writes a schedule.
    const [row] = await stack.ds.query<{ id: string; owner_id: string }[]>(
      `INSERT INTO schedules (name, owner_id, spec, device_ids, type, access, state, last_planned_at, next_at)
       SELECT 'every second', p.id, $1, $2, 'remote-control', 'full', 'active', now(), $3 FROM principals p WHERE p.name = 'root'
       RETURNING id, owner_id`,
      [
        JSON.stringify({
          intervalMinutes: 1 / 60,
          startsAt: new Date(t0).toISOString(),
          endsAt: new Date(t0 + (n - 1) * 1000).toISOString(),
          windowMinutes: 1,
          missedPolicy: 'skip',
        }),
        [device],
        new Date(t0),
      ],
    );
    await stack.ds.query(
      `INSERT INTO outbox (queue, job_name, job_id, payload, run_at) VALUES ('schedules', 'schedule.occurrence', $1, $2, $3)`,
      [`occurrence.${row.id}.${t0}`, JSON.stringify({ scheduleId: row.id, at: new Date(t0).toISOString() }), new Date(t0)],
    );
    await decided(row.id, n);
    await waitUntil(async () => ((await stack.admin.get(`/v1/schedules/${row.id}`)).body.state === 'ended' ? true : null));
    const sessions = await sessionsOf(row.id);
    expect(sessions.map((s) => s.occurrence_at.getTime())).toEqual(Array.from({ length: n }, (_, i) => t0 + i * 1000));
    expect(new Set(sessions.map((s) => s.requester_id))).toEqual(new Set([row.owner_id]));
    expect((await runs(row.id)).map((o) => o.outcome)).toEqual(Array(n).fill('requested'));
    // Both workers took part, or at least neither ran an occurrence twice: one occurrence event each.
    expect(
      await count(`SELECT count(*)::int AS n FROM audit_events WHERE stream = $1 AND action LIKE 'schedule.occurrence_%'`, [
        `schedule:${row.id}`,
      ]),
    ).toBe(n);
  });

  it('runs an occurrence once when Redis lost its timer between booking and due time', async () => {
    const device = await addDevice(stack.admin, world.ids.desks, 'SCHED-4');
    const { id, at } = await oneShot(stack.admin, device, 3000);
    await new Promise((r) => setTimeout(r, 800)); // the relay has handed the timer to Redis
    const redis = new IORedis(stack.redis.url);
    try {
      await redis.flushall();
    } finally {
      redis.disconnect();
    }
    await decided(id, 1);
    await new Promise((r) => setTimeout(r, 1500)); // a second decision would have come by now
    expect((await runs(id)).map((o) => [o.at, o.outcome])).toEqual([[at, 'requested']]);
    expect(await sessionsOf(id)).toHaveLength(1);
  });

  it('runs an occurrence once when a worker is SIGKILLed at its due time', async () => {
    const device = await addDevice(stack.admin, world.ids.desks, 'SCHED-5');
    const { id, at } = await oneShot(stack.admin, device, 3000);
    await new Promise((r) => setTimeout(r, Date.parse(at) - Date.now()));
    await stack.worker.stop('SIGKILL');
    await decided(id, 1);
    stack.worker = RcflowProcess.start('worker', stack.env);
    await stack.worker.waitFor('worker running', 90_000);
    await new Promise((r) => setTimeout(r, 3000)); // past the killed worker's lock: its job, if it had it, ran again
    expect((await runs(id)).map((o) => o.outcome)).toEqual(['requested']);
    expect(await sessionsOf(id)).toHaveLength(1);
  });

  it("refuses the next occurrence with the reason when the owner's role was revoked after booking", async () => {
    const device = await addDevice(stack.admin, world.ids.desks, 'SCHED-6');
    const bob = stack.admin.as(world.keys.bob);
    const { id } = await oneShot(bob, device, 3000);
    const [grant] = await stack.ds.query<{ id: string }[]>(`SELECT id FROM role_assignments WHERE principal_id = $1`, [world.ids.bob]);
    expect((await stack.admin.req('DELETE', `/v1/role-assignments/${grant.id}`)).status).toBeLessThan(300);
    await decided(id, 1);
    expect(await runs(id)).toEqual([
      expect.objectContaining({
        outcome: 'refused',
        reason: 'bob may not request sessions',
        targets: [{ deviceId: device, sessionId: null, refused: 'bob may not request sessions' }],
      }),
    ]);
    expect(await sessionsOf(id)).toEqual([]);
  });

  it('pauses (occurrences falling meanwhile are not run), resumes from now, and deletes, each audited', async () => {
    const device = await addDevice(stack.admin, world.ids.desks, 'SCHED-7');
    const { id } = await oneShot(stack.admin, device, 2000);
    expect((await stack.admin.post(`/v1/schedules/${id}/pause`)).body).toMatchObject({ state: 'paused', nextAt: null });
    await new Promise((r) => setTimeout(r, 3000));
    expect(await runs(id)).toEqual([]);
    // Its only occurrence has passed: resuming leaves nothing to run.
    expect((await stack.admin.post(`/v1/schedules/${id}/resume`)).body).toMatchObject({ state: 'ended', nextAt: null });
    expect((await stack.admin.req('DELETE', `/v1/schedules/${id}`)).status).toBe(204);
    expect((await stack.admin.get(`/v1/schedules/${id}`)).body.state).toBe('deleted');
    expect((await stack.admin.post(`/v1/schedules/${id}/pause`)).status).toBe(409);
    const actions = await stack.ds.query<{ action: string }[]>(`SELECT action FROM audit_events WHERE stream = $1 ORDER BY seq`, [
      `schedule:${id}`,
    ]);
    expect(actions.map((a) => a.action)).toEqual(['schedule.created', 'schedule.paused', 'schedule.resumed', 'schedule.deleted']);
  });
});
