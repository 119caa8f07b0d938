import { TERMINAL_STATES } from '../../libs/domain/src';
import { Api } from '../support/http';
import { SseClient, SseEvent } from '../support/sse';
import { Stack, addDevice, seedOperatorWorld, sessionReaches, startStack } from '../support/stack';
import { tearDown } from '../support/teardown';

jest.setTimeout(180_000);

const MAX_STREAMS = 3;
const REPLAY_MAX = 20;
const TERMINAL = [...TERMINAL_STATES];

/**
 * GET /v1/events against the real API and worker processes, read as a client reads it: raw HTTP,
 * the stream parsed as an EventSource does. What a stream shows is compared with GET /v1/audit.
 */
describe('live events (GET /v1/events)', () => {
  let stack: Stack;
  let starting: Promise<Stack> | undefined;
  let base: string;
  let root: Api;
  let keys: { alice: string; bob: string; deskAuditor: string };
  const ids: Record<string, string> = {};
  const open: SseClient[] = [];

  const connect = async (path: string, key: string, lastEventId?: string) => {
    const c = await SseClient.connect(base, path, { key, lastEventId });
    open.push(c);
    return c;
  };
  /** A session's audit events, oldest first, as the audit list shows them. */
  const auditOf = async (sessionId: string) => {
    const r = await root.get(`/v1/audit?sessionId=${sessionId}&limit=500`);
    expect(r.status).toBe(200);
    return (r.body.items as { id: string; action: string }[]).reverse();
  };
  const of = (events: SseEvent[], sessionId: string) => events.filter((e) => e.data.sessionId === sessionId);
  /** Requests a session as `key` and carries it to its end: active ones are ended by their requester. */
  const request = async (key: string, deviceId: string) => {
    const r = await root.as(key).post('/v1/sessions', { deviceId, type: 'remote-control', access: 'full', reason: 'events' });
    expect(r.status).toBe(202);
    return r.body.id as string;
  };
  const finish = async (key: string, sessionId: string) => {
    const state = await sessionReaches(root, sessionId, ['active', ...TERMINAL], 60_000);
    if (state === 'active') expect((await root.as(key).post(`/v1/sessions/${sessionId}/cancel`, { reason: 'done' })).status).toBe(200);
    await sessionReaches(root, sessionId, TERMINAL, 60_000);
    return auditOf(sessionId);
  };

  beforeAll(async () => {
    stack = await (starting = startStack(
      'events',
      {
        AGENT_TRANSPORT: 'loopback',
        EVENTS_POLL_MS: '100',
        EVENTS_HEARTBEAT_MS: '1000',
        EVENTS_MAX_STREAMS_PER_PRINCIPAL: String(MAX_STREAMS),
        EVENTS_REPLAY_MAX: String(REPLAY_MAX),
      },
      2,
    ));
    root = stack.admin;
    base = root.base;
    const world = await seedOperatorWorld(root);
    Object.assign(ids, world.ids);
    for (const host of ['PC-1', 'PC-2']) ids[host] = await addDevice(root, world.ids.desks, host);
    ids.server = await addDevice(root, world.ids.servers, 'SRV-1');
    const auditor = (await root.post('/v1/principals', { name: 'desk-auditor', kind: 'user' })).body.id as string;
    await root.post('/v1/role-assignments', { principalId: auditor, role: 'read_only_auditor', collectionIds: [world.ids.desks] });
    keys = {
      alice: world.keys.alice,
      bob: world.keys.bob,
      deskAuditor: (await root.post('/v1/api-keys', { principalId: auditor, name: 'events' })).body.key as string,
    };
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  afterAll(() => tearDown({ stack: async () => (stack ?? (await starting?.catch(() => undefined)))?.stop() }));

  it('refuses a caller without a key (401) and bad input (400), with the error shape', async () => {
    const anon = await SseClient.open(base, '/v1/events');
    expect(anon.status).toBe(401);
    expect(anon.refused).toEqual({ error: expect.objectContaining({ status: 401, code: 'unauthenticated' }) });

    const cases: [string, string | undefined, string][] = [
      ['/v1/events?types=Session.Active', undefined, 'types'],
      ['/v1/events?sessionId=nope', undefined, 'sessionId'],
      ['/v1/events?after=-1', undefined, 'after'],
      ['/v1/events?follow=maybe', undefined, 'follow'],
      ['/v1/events', 'abc', 'Last-Event-ID'],
    ];
    for (const [path, lastEventId, field] of cases) {
      const r = await SseClient.open(base, path, { key: keys.alice, lastEventId });
      expect({ path, status: r.status }).toEqual({ path, status: 400 });
      expect(r.refused.error).toMatchObject({ status: 400, code: 'validation_failed' });
      expect(r.refused.error.details.map((d: { path: string }) => d.path)).toEqual([field]);
    }
    const unknown = await SseClient.open(base, '/v1/events?session=x', { key: keys.alice });
    expect(unknown.status).toBe(400);
  });

  it("streams a session's lifecycle to its requester in order, each event as GET /v1/audit shows it", async () => {
    const alice = await connect('/v1/events', keys.alice);
    expect(alice.headers['content-type']).toMatch(/^text\/event-stream/);
    const s = await request(keys.alice, ids['PC-1']);
    await alice.until((ev) => of(ev, s).some((e) => e.event === 'session.active'), 'session.active');
    const audit = await finish(keys.alice, s);
    const last = audit[audit.length - 1].id;
    await alice.until((ev) => ev.some((e) => e.id === last), `the session's last event ${last}`);

    const mine = of(alice.events, s);
    expect(mine.map((e) => e.data)).toEqual(audit);
    expect(mine.map((e) => e.id)).toEqual(audit.map((a) => a.id));
    expect(mine.map((e) => e.event)).toEqual(audit.map((a) => a.action));
    expect(mine[0].event).toBe('session.requested');
    // alice holds no audit.read: her own session's events are all she sees.
    expect(alice.events.filter((e) => e.data.sessionId !== s)).toEqual([]);
  });

  it('resumes after a disconnect with Last-Event-ID (or ?after=): the rest, no gap, no duplicate', async () => {
    const first = await connect('/v1/events?types=session.', keys.alice);
    const s = await request(keys.alice, ids['PC-2']);
    await first.until((ev) => of(ev, s).length >= 2, 'two events of the session');
    first.close();
    await first.ended;
    const seen = of(first.events, s);
    const lastSeen = first.events[first.events.length - 1].id;

    // The session moves on while nobody listens.
    const audit = await finish(keys.alice, s);
    const last = audit[audit.length - 1].id;
    expect(audit.length).toBeGreaterThan(seen.length);

    const resumed = await connect('/v1/events?types=session.', keys.alice, lastSeen);
    const byQuery = await connect(`/v1/events?types=session.&after=${lastSeen}`, keys.alice);
    // A reconnecting EventSource keeps its URL: the header wins over ?after=.
    const both = await connect('/v1/events?types=session.&after=0', keys.alice, lastSeen);
    for (const c of [resumed, byQuery, both]) await c.until((ev) => ev.some((e) => e.id === last), `event ${last} after resuming`);

    const whole = [...seen, ...of(resumed.events, s)];
    expect(whole.map((e) => e.id)).toEqual(audit.map((a) => a.id));
    expect(whole.map((e) => e.data)).toEqual(audit);
    expect(resumed.events.every((e) => BigInt(e.id) > BigInt(lastSeen))).toBe(true);
    expect(byQuery.events).toEqual(resumed.events);
    expect(both.events).toEqual(resumed.events);
  });

  it('resumes on another API process (behind a balancer) with no gap and no duplicate', async () => {
    const other = stack.apis[1].api.base;
    const first = await connect('/v1/events?types=session.', keys.alice);
    const s = await request(keys.alice, ids['PC-2']);
    await first.until((ev) => of(ev, s).length >= 1, 'the first event of the session');
    first.close();
    const seen = of(first.events, s);
    const audit = await finish(keys.alice, s);
    const last = audit[audit.length - 1].id;
    const there = await SseClient.connect(other, '/v1/events?types=session.', { key: keys.alice, lastEventId: seen[seen.length - 1].id });
    open.push(there);
    await there.until((ev) => ev.some((e) => e.id === last), `event ${last} on the other process`);
    expect([...seen, ...of(there.events, s)].map((e) => e.id)).toEqual(audit.map((a) => a.id));
  });

  it("does not show a scoped auditor another collection's session; an unrestricted one sees it", async () => {
    const desk = await connect('/v1/events', keys.deskAuditor);
    const all = await connect('/v1/events', root.key!);
    const s = await request(root.key!, ids.server);
    const audit = await finish(root.key!, s);
    expect(audit.length).toBeGreaterThan(0);
    // A later event on Desks: the desk auditor's stream is in id order, so by then it would have had the server session's.
    const patched = await root.req('PATCH', `/v1/devices/${ids['PC-1']}`, { osBuild: '10.0.26100' });
    expect(patched.status).toBe(200);
    const barrier = (ev: SseEvent[]) => ev.some((e) => e.event === 'device.updated' && e.data.deviceId === ids['PC-1']);
    await desk.until(barrier, 'the Desks device update');
    await all.until(barrier, 'the Desks device update');

    expect(of(all.events, s).map((e) => e.id)).toEqual(audit.map((a) => a.id));
    expect(of(desk.events, s)).toEqual([]);
    expect(desk.events.every((e) => e.data.deviceId === ids['PC-1'] || e.data.deviceId === ids['PC-2'])).toBe(true);
  });

  it('replays with ?after=0&follow=false and ends; refuses a replay longer than the cap with 422', async () => {
    const s = await request(keys.alice, ids['PC-1']);
    const audit = await finish(keys.alice, s);
    const replay = await connect(`/v1/events?sessionId=${s}&after=0&follow=false`, root.key!);
    await replay.ended;
    expect(replay.events.map((e) => e.data)).toEqual(audit);

    const total = await root.get(`/v1/audit?limit=${REPLAY_MAX + 1}`);
    expect(total.body.items.length).toBe(REPLAY_MAX + 1);
    const tooLong = await SseClient.open(base, '/v1/events?after=0', { key: root.key! });
    expect(tooLong.status).toBe(422);
    expect(tooLong.refused.error).toMatchObject({ status: 422, details: [{ path: 'after', message: expect.any(String) }] });
  });

  it('sends a retry hint and keep-alive comments', async () => {
    const c = await connect('/v1/events?types=nothing.', keys.bob);
    await c.until((_, client) => client.comments.includes('keep-alive'), 'a keep-alive comment');
    expect(c.retry).toBeGreaterThan(0);
  });

  it('limits open streams per principal (429 with the error shape) and frees a slot when one closes', async () => {
    const streams = [];
    for (let i = 0; i < MAX_STREAMS; i++) streams.push(await connect('/v1/events', keys.bob));
    const refused = await SseClient.open(base, '/v1/events', { key: keys.bob });
    expect(refused.status).toBe(429);
    expect(refused.refused.error).toMatchObject({ status: 429, code: 'too_many_streams' });
    expect(refused.headers['retry-after']).toBeDefined();
    // Another principal is not held back by bob's streams.
    await connect('/v1/events', keys.alice);

    streams[0].close();
    let again = await SseClient.open(base, '/v1/events', { key: keys.bob });
    for (let i = 0; i < 100 && again.status === 429; i++) {
      await new Promise((r) => setTimeout(r, 50));
      again = await SseClient.open(base, '/v1/events', { key: keys.bob });
    }
    expect(again.status).toBe(200);
    again.client!.close();
  });

  it('ends the stream of a key that is revoked', async () => {
    const watcher = (await root.post('/v1/principals', { name: 'watcher', kind: 'user' })).body.id as string;
    const created = (await root.post('/v1/api-keys', { principalId: watcher, name: 'events' })).body as { id: string; key: string };
    const c = await connect('/v1/events', created.key);
    expect(c.isEnded).toBe(false);
    expect((await root.req('DELETE', `/v1/api-keys/${created.id}`)).status).toBe(200);
    await c.ended;
    expect((await SseClient.open(base, '/v1/events', { key: created.key })).status).toBe(401);
  });

  it('ends open streams when the API is told to stop, so SIGTERM is not held up', async () => {
    const c = await connect('/v1/events', root.key!);
    const api = stack.apis[0].proc;
    expect(await api.stop('SIGTERM')).toBe(0);
    await c.ended;
    expect(api.output).not.toMatch(/still draining/);
  });
});
