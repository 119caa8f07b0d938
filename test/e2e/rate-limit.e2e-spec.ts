import { Api } from '../support/http';
import { OperatorWorld, Stack, addDevice, seedOperatorWorld, startStack } from '../support/stack';

jest.setTimeout(120_000);

const PER_MINUTE = 60;

/**
 * DESIGN.md "Rate and size limits on every entry point; a flood from one caller does not starve
 * others": each caller has its own budget of RATE_LIMIT_PER_MINUTE a minute (a window in Redis
 * opened by its first request); beyond it the API answers 429 with Retry-After, stores nothing,
 * and keeps serving everybody else.
 */
describe('rate limit per caller (api + worker processes)', () => {
  let stack: Stack;
  let world: OperatorWorld;
  let alice: Api;
  let bob: Api;
  let device: string;

  beforeAll(async () => {
    stack = await startStack('ratelimit', { AGENT_TRANSPORT: 'loopback', RATE_LIMIT_PER_MINUTE: String(PER_MINUTE) });
    world = await seedOperatorWorld(stack.admin);
    alice = stack.admin.as(world.keys.alice);
    bob = stack.admin.as(world.keys.bob);
    device = await addDevice(stack.admin, world.ids.desks, 'PC-FLOOD');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('answers a flood from one caller with 429 and Retry-After, stores nothing for it, and still serves another caller', async () => {
    const flood = await Promise.all(
      Array.from({ length: PER_MINUTE * 2 }, () =>
        alice.post('/v1/sessions', { deviceId: device, type: 'remote-control', access: 'view' }),
      ),
    );
    const statuses = flood.map((r) => r.status);
    const accepted = flood.filter((r) => r.status === 202);
    const limited = flood.filter((r) => r.status === 429);
    expect(accepted.length + limited.length).toBe(flood.length);
    expect(accepted.length).toBeGreaterThan(0);
    expect(limited.length).toBeGreaterThanOrEqual(PER_MINUTE / 2); // 120 asked against a budget of 60 a minute
    for (const r of limited) {
      expect(r.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
      expect(r.body.error).toMatchObject({ status: 429, code: 'rate_limited', message: expect.stringMatching(/retry after \d+ s/) });
    }
    // A refused request left no trace: the sessions are exactly the accepted ones.
    const stored: { id: string }[] = await stack.ds.query('SELECT id FROM sessions WHERE device_id = $1', [device]);
    expect(stored.map((s) => s.id).sort()).toEqual(accepted.map((r) => r.body.id).sort());
    expect(statuses.filter((s) => s === 202)).toHaveLength(stored.length);

    // Another caller is served at once, its budget untouched by alice's flood.
    const other = await bob.get('/v1/sessions?limit=1');
    expect(other.status).toBe(200);
    const bobsOwn = await bob.post('/v1/sessions', { deviceId: device, type: 'remote-control', access: 'view' });
    expect(bobsOwn.status).toBe(202);
  });

  it('serves the limited caller again once Retry-After has passed', async () => {
    let refused = await alice.get('/v1/sessions?limit=1');
    for (let i = 0; refused.status !== 429 && i < PER_MINUTE * 2; i++) refused = await alice.get('/v1/sessions?limit=1');
    expect(refused.status).toBe(429);
    const seconds = Number(refused.headers.get('retry-after'));
    expect(seconds).toBeGreaterThanOrEqual(1);
    // What the header promises, waited for as it says (the window ends with time only).
    await new Promise((r) => setTimeout(r, seconds * 1000));
    expect((await alice.get('/v1/sessions?limit=1')).status).toBe(200);
  });
});
