import IORedis from 'ioredis';
import { OperatorWorld, Stack, addDevice, seedOperatorWorld, sessionReaches, startStack } from '../support/stack';
import { tearDown } from '../support/teardown';

jest.setTimeout(120_000);

type Json = Record<string, any>;

/**
 * Sessions booked ahead, on real processes (api, worker, loopback agents, PostgreSQL, a private
 * Redis): stored `scheduled`, started on time with the checks as they are then, once — also when
 * Redis lost the timer in between (the sweep rebuilds it from PostgreSQL).
 */
describe('sessions booked ahead end to end', () => {
  let stack: Stack;
  let starting: Promise<Stack> | undefined;
  let world: OperatorWorld;

  beforeAll(async () => {
    stack = await (starting = startStack('scheduled', { AGENT_TRANSPORT: 'loopback', SWEEP_STALE_MS: '1000' }));
    world = await seedOperatorWorld(stack.admin);
  });
  afterAll(() => tearDown({ stack: async () => (stack ?? (await starting?.catch(() => undefined)))?.stop() }));

  const alice = () => stack.admin.as(world.keys.alice);
  const book = async (deviceId: string, inMs: number, extra: Json = {}) => {
    const notBefore = new Date(Date.now() + inMs).toISOString();
    const r = await alice().post('/v1/sessions', { deviceId, type: 'remote-control', access: 'full', notBefore, ...extra });
    expect(r.status).toBe(202);
    expect(r.body.state).toBe('scheduled');
    return { id: r.body.id as string, notBefore };
  };
  const timeline = async (id: string) =>
    ((await stack.admin.get(`/v1/sessions/${id}`)).body.timeline as { state: string; at: string }[]).map((e) => [e.state, e.at]);

  it('waits scheduled, then goes active on time, its checks run when due', async () => {
    const device = await addDevice(stack.admin, world.ids.desks, 'BOOK-1');
    const { id, notBefore } = await book(device, 2000);
    expect((await stack.admin.get(`/v1/sessions/${id}`)).body).toMatchObject({ state: 'scheduled', notBefore, notAfter: null });
    expect(await sessionReaches(stack.admin, id, ['active', 'rejected', 'failed', 'expired'], 20_000)).toBe('active');
    const steps = await timeline(id);
    expect(steps.map(([state]) => state)).toEqual([
      'scheduled',
      'validating',
      'eligible',
      'pushing_settings',
      'awaiting_consent',
      'active',
    ]);
    // Not a moment before its time.
    expect(Date.parse(steps[1][1])).toBeGreaterThanOrEqual(Date.parse(notBefore) - 1000);
  });

  it('still starts once when Redis lost its timer between booking and due time', async () => {
    const device = await addDevice(stack.admin, world.ids.desks, 'BOOK-2');
    const { id } = await book(device, 2000);
    // Let the relay hand the delayed job to Redis, then lose everything Redis held.
    await new Promise((r) => setTimeout(r, 500));
    const redis = new IORedis(stack.redis.url);
    try {
      await redis.flushall();
    } finally {
      redis.disconnect();
    }
    expect(await sessionReaches(stack.admin, id, ['active', 'rejected', 'failed', 'expired'], 30_000)).toBe('active');
    const steps = (await timeline(id)).map(([state]) => state);
    expect(steps.filter((s) => s === 'validating')).toHaveLength(1);
    expect(steps.at(-1)).toBe('active');
  });

  it('is checked again when due: a viewer no longer permitted by then is rejected with that reason', async () => {
    const device = await addDevice(stack.admin, world.ids.desks, 'BOOK-3');
    const { id } = await book(device, 2500);
    // alice leaves HELPDESK, the group the settings permit, after booking.
    expect((await stack.admin.req('DELETE', `/v1/principals/${world.ids.helpdesk}/members/${world.ids.alice}`)).status).toBe(200);
    try {
      const state = await sessionReaches(stack.admin, id, ['active', 'rejected', 'failed', 'expired', 'cancelled'], 20_000);
      expect(state).toBe('rejected');
      const decision = (await stack.admin.get(`/v1/sessions/${id}/decision`)).body as { checks: { passed: boolean; detail: string }[] };
      expect(
        decision.checks
          .filter((c) => !c.passed)
          .map((c) => c.detail)
          .join('; '),
      ).toContain('not in permitted viewers');
    } finally {
      await stack.admin.put(`/v1/principals/${world.ids.helpdesk}/members/${world.ids.alice}`);
    }
  });

  it('can be cancelled while it waits, and then never starts', async () => {
    const device = await addDevice(stack.admin, world.ids.desks, 'BOOK-4');
    const { id } = await book(device, 1500, { notAfter: new Date(Date.now() + 60_000).toISOString() });
    expect((await alice().post(`/v1/sessions/${id}/cancel`, { reason: 'solved by phone' })).body).toMatchObject({ state: 'cancelled' });
    await new Promise((r) => setTimeout(r, 2500));
    expect((await timeline(id)).map(([state]) => state)).toEqual(['scheduled', 'cancelled']);
  });
});
