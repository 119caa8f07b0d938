import { Api } from '../support/http';
import { allAtRest, bulkDevices, expectInvariants } from '../support/invariants';
import { OperatorWorld, Stack, seedOperatorWorld, startStack } from '../support/stack';

jest.setTimeout(240_000);

/**
 * Network faults between rcflow's processes and its stores, through test/support/fault-proxy.ts:
 * the API and the worker reach Redis and PostgreSQL through proxies the test degrades; the test's
 * own checks go direct. Each case ends with the invariants of DESIGN.md "What must hold".
 */
describe('network faults between rcflow and its stores', () => {
  let stack: Stack;
  let world: OperatorWorld;
  let alice: Api;

  beforeAll(async () => {
    stack = await startStack(
      'netfaults',
      {
        AGENT_TRANSPORT: 'loopback',
        LOOPBACK_AGENT: JSON.stringify({ default: { latencyMs: 50 } }),
        JOB_LOCK_MS: '5000',
        WORKER_CONCURRENCY: '20',
        SWEEP_STALE_MS: '4000',
        RATE_LIMIT_PER_MINUTE: '100000',
      },
      1,
      { faultProxies: true },
    );
    world = await seedOperatorWorld(stack.admin);
    alice = stack.admin.as(world.keys.alice);
  });
  afterEach(() => stack?.proxies?.redis.clear());
  afterEach(() => stack?.proxies?.postgres.clear());
  afterAll(() => stack?.stop());

  const request = async (deviceIds: string[]): Promise<string[]> => {
    const ids: string[] = [];
    for (const deviceId of deviceIds) {
      const r = await alice.post('/v1/sessions', { deviceId, type: 'remote-control', access: 'full' });
      expect(r.status).toBe(202);
      ids.push(r.body.id as string);
    }
    return ids;
  };
  const states = async (ids: string[]) =>
    await stack.ds.query<{ state: string; n: number }[]>(
      'SELECT state, count(*)::int AS n FROM sessions WHERE id = ANY($1) GROUP BY state ORDER BY state',
      [ids],
    );

  it('Redis and PostgreSQL both 200 ms away: every session still goes active once', async () => {
    const { redis, postgres } = stack.proxies!;
    redis.set({ latencyMs: 200, jitterMs: 20 });
    postgres.set({ latencyMs: 200, jitterMs: 20 });
    const ids = await request(await bulkDevices(stack.ds, world.ids.desks, 'SLOW', 10));
    await allAtRest(stack.ds, ids, 180_000);
    redis.clear();
    postgres.clear();
    expect(await states(ids)).toEqual([{ state: 'active', n: 10 }]);
    await expectInvariants(stack.ds, ids);
  });

  it('Redis cut off for 30 s (a partition that heals): intake keeps answering 202 from the outbox, and every session finishes once after', async () => {
    const { redis } = stack.proxies!;
    const before = await request(await bulkDevices(stack.ds, world.ids.desks, 'HOLE-A', 5));
    redis.set({ mode: 'partition' });
    const during = await request(await bulkDevices(stack.ds, world.ids.desks, 'HOLE-B', 10));
    await new Promise((resolve) => setTimeout(resolve, 30_000));
    redis.clear();
    const ids = [...before, ...during];
    await allAtRest(stack.ds, ids, 180_000);
    expect(await states(ids)).toEqual([{ state: 'active', n: 15 }]);
    await expectInvariants(stack.ds, ids);
  }, 360_000);

  it('every PostgreSQL connection reset under load: a cut request retried with its key gets one session, and every session finishes once', async () => {
    const { postgres } = stack.proxies!;
    const devices = await bulkDevices(stack.ds, world.ids.desks, 'RST', 40);
    const ask = (deviceId: string) =>
      alice.post('/v1/sessions', { deviceId, type: 'remote-control', access: 'full' }, { 'Idempotency-Key': `rst-${deviceId}` });
    const first = devices.map(async (deviceId, i) => {
      await new Promise((resolve) => setTimeout(resolve, i * 20));
      return await ask(deviceId).catch(() => ({ status: 0, body: {} }));
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    postgres.resetAll();
    const answers = await Promise.all(first);
    // A request the reset cut answers a clear 5xx (or its connection drops); it never claims success it did not commit.
    for (const a of answers) expect([0, 202, 500, 503]).toContain(a.status);
    // The client retries what was not accepted, with the same key: one session per device either way.
    const ids: string[] = [];
    for (const [i, deviceId] of devices.entries()) {
      const answer = answers[i].status === 202 ? answers[i] : await ask(deviceId);
      expect(answer.status).toBe(202);
      ids.push(answer.body.id as string);
    }
    expect(new Set(ids).size).toBe(devices.length);
    const perDevice = await stack.ds.query<{ n: number }[]>(
      'SELECT count(*)::int AS n FROM sessions WHERE device_id = ANY($1) GROUP BY device_id HAVING count(*) > 1',
      [devices],
    );
    expect(perDevice).toEqual([]);
    await allAtRest(stack.ds, ids, 180_000);
    expect(await states(ids)).toEqual([{ state: 'active', n: devices.length }]);
    await expectInvariants(stack.ds, ids);
  });
});
