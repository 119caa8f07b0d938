import { Api } from '../support/http';
import { waitUntil } from '../support/processes';
import { RawAgent, presence } from '../support/raw-agent';
import { OperatorWorld, Stack, addDevice, seedOperatorWorld, sessionReaches, startStack } from '../support/stack';

jest.setTimeout(120_000);

/**
 * Issue 9, "Audit integrity" and "Server errors": text PostgreSQL cannot store exactly (NUL, lone
 * UTF-16 surrogates) is refused at every boundary with the field named, agent answers carrying it
 * are refused as malformed frames without failing the session, and cursors and dates are checked
 * before any SQL. Each example of the issue is here; after all of them the audit still verifies.
 */
describe('input boundary (api, worker, raw WebSocket agents)', () => {
  let stack: Stack;
  let world: OperatorWorld;
  let admin: Api;
  let alice: Api;
  let device: string;
  const agents: RawAgent[] = [];

  beforeAll(async () => {
    stack = await startStack('input', {
      AGENT_TRANSPORT: 'websocket',
      AGENT_HEARTBEAT_SECONDS: '1',
      PRESENCE_GRACE_SECONDS: '30',
      SETTINGS_ACK_TIMEOUT_MS: '15000',
      CONSENT_TIMEOUT_MS: '15000',
      JOB_ATTEMPTS: '1',
      RATE_LIMIT_PER_MINUTE: '100000',
    });
    admin = stack.admin;
    world = await seedOperatorWorld(admin);
    alice = admin.as(world.keys.alice);
    device = await addDevice(admin, world.ids.desks, 'PC-INPUT');
  });
  afterAll(async () => {
    try {
      for (const a of agents) a.close();
    } finally {
      await stack?.stop();
    }
  });

  const counts = async () =>
    (
      await stack.ds.query(`SELECT (SELECT count(*)::int FROM sessions) AS sessions, (SELECT count(*)::int FROM audit_events) AS events`)
    )[0];

  const expect400 = (r: { status: number; body: any }, field: RegExp) => {
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(field);
  };

  it('refuses a lone surrogate or NUL in a session request with 400 naming the field, and stores nothing', async () => {
    const before = await counts();
    const ask = { deviceId: device, type: 'remote-control', access: 'full' };
    expect400(await alice.post('/v1/sessions', { ...ask, reason: 'x\ud800y' }), /reason.*surrogate/);
    expect400(await alice.post('/v1/sessions', { ...ask, ticketRef: 'T-\udc001' }), /ticketRef.*surrogate/);
    expect400(await alice.post('/v1/sessions', { ...ask, reason: 'a\u0000b' }), /reason.*NUL/);
    // The JSON escape sent as is, as the example does.
    const raw = `{"deviceId":"${device}","type":"remote-control","access":"full","reason":"x\\ud800y"}`;
    expect400(await alice.req('POST', '/v1/sessions', raw, { 'content-type': 'application/json' }), /reason/);
    expect(await counts()).toEqual(before);
    expect((await admin.get('/v1/audit/verify')).body.ok).toBe(true);
  });

  it('refuses NUL in query strings before they reach SQL', async () => {
    expect400(await admin.get('/v1/devices?hostname=a%00b'), /hostname.*NUL/);
    expect400(await admin.get('/v1/principals?name=a%00b'), /name.*NUL/);
  });

  it('refuses NUL in a presence field at enrolment with 400 naming the field', async () => {
    const t = await admin.post('/v1/enrolment-tokens', { hostname: 'AG-NUL' });
    const r = await admin.post('/v1/agent/enrol', { token: t.body.token, hostname: 'AG-NUL', presence: presence({ osBuild: 'a\u0000b' }) });
    expect400(r, /presence\.osBuild.*NUL/);
    // The token is still good: nothing was consumed by the refused request.
    expect((await admin.post('/v1/agent/enrol', { token: t.body.token, hostname: 'AG-NUL', presence: presence() })).status).toBe(201);
  });

  /** Answers that cannot be stored are refused as malformed frames; the step keeps waiting for a good one. */
  it('refuses unstorable agent text as a malformed frame, and the session the user accepts still becomes active', async () => {
    const t = await admin.post('/v1/enrolment-tokens', { hostname: 'AG-TEXT' });
    const e = await admin.post('/v1/agent/enrol', { token: t.body.token, hostname: 'AG-TEXT', presence: presence() });
    expect(e.status).toBe(201);
    await admin.put(`/v1/collections/${world.ids.desks}/members/${e.body.deviceId}`);
    const agent = await RawAgent.connect(admin.base, e.body.credential);
    agents.push(agent);

    agent.send({ v: 1, type: 'hello', presence: presence({ osBuild: 'a\u0000b' }) });
    const refusedHello = await agent.next('error');
    expect(refusedHello).toMatchObject({ code: 'bad_frame', message: expect.stringMatching(/presence\.osBuild.*NUL/) });
    await agent.hello();
    let seen = agent.received.length;
    agent.send({ v: 1, type: 'heartbeat', presence: presence({ loggedOnUser: 'CONTOSO\\\ud800' }) });
    expect(await agent.next('error', 15_000, seen)).toMatchObject({ message: expect.stringMatching(/presence\.loggedOnUser.*surrogate/) });

    const s = await alice.post('/v1/sessions', { deviceId: e.body.deviceId, type: 'remote-control', access: 'full' });
    expect(s.status).toBe(202);
    const sessionId = s.body.id as string;
    const apply = await agent.next('apply_settings');
    seen = agent.received.length;
    agent.send({ v: 1, type: 'settings_rejected', commandId: apply.commandId, reason: 'no\ud800' });
    expect(await agent.next('error', 15_000, seen)).toMatchObject({
      code: 'bad_frame',
      message: expect.stringMatching(/^reason:.*surrogate/),
    });
    agent.send({ v: 1, type: 'settings_applied', commandId: apply.commandId, versionHash: apply.versionHash });

    const start = await agent.next('start_session');
    seen = agent.received.length;
    agent.send({ v: 1, type: 'consent', commandId: start.commandId, sessionId, outcome: 'granted', answeredBy: 'CONTOSO\\carol\udfff' });
    expect(await agent.next('error', 15_000, seen)).toMatchObject({ message: expect.stringMatching(/answeredBy.*surrogate/) });
    agent.send({ v: 1, type: 'consent', commandId: start.commandId, sessionId, outcome: 'granted', answeredBy: 'CONTOSO\\carol' });
    agent.send({ v: 1, type: 'session_started', commandId: start.commandId, sessionId, connect: { host: 'pc.contoso.test', port: 5938 } });
    expect(await sessionReaches(alice, sessionId, ['active', 'failed', 'consent_timeout'])).toBe('active');

    // The cancel reason is held to the same rule (400 before anything changes), then a good one ends it.
    expect400(await alice.post(`/v1/sessions/${sessionId}/cancel`, { reason: 'stop\ud800' }), /reason.*surrogate/);
    expect((await alice.get(`/v1/sessions/${sessionId}`)).body.state).toBe('active');
    seen = agent.received.length;
    expect((await alice.post(`/v1/sessions/${sessionId}/cancel`, { reason: 'done' })).status).toBe(200);
    const end = await agent.next('end_session', 15_000, seen);
    // An agent's session_ended reason too.
    seen = agent.received.length;
    agent.send({ v: 1, type: 'session_ended', sessionId, by: 'user', reason: 'bye\ud800', commandId: end.commandId });
    expect(await agent.next('error', 15_000, seen)).toMatchObject({ message: expect.stringMatching(/^reason:.*surrogate/) });
    await waitUntil(async () => (await alice.get(`/v1/sessions/${sessionId}`)).body.state === 'ended', 15_000, 'ended');
    const timeline = JSON.stringify((await alice.get(`/v1/sessions/${sessionId}`)).body.timeline);
    expect(timeline).not.toMatch(/\\ufffd|\ufffd|worker_error/);
  });

  it.each([
    ['/v1/sessions?cursor=WyJ4IiwieSJd'], // ["x","y"]
    ['/v1/audit?cursor=WyIxLjUiXQ'], // ["1.5"]
    [`/v1/audit?cursor=${Buffer.from('["99999999999999999999"]').toString('base64url')}`], // beyond bigint
    [`/v1/audit?cursor=${Buffer.from('[-1]').toString('base64url')}`],
    [`/v1/sessions?cursor=${Buffer.from('["0000-01-01T00:00:00Z","00000000-0000-4000-8000-000000000000"]').toString('base64url')}`],
    [`/v1/devices?cursor=${Buffer.from('["1e3","00000000-0000-4000-8000-000000000000"]').toString('base64url')}`],
  ])('answers a cursor of the wrong shape with 400: %s', async (path) => {
    expect400(await admin.get(path), /cursor/);
  });

  it.each([
    ['/v1/audit', 'to=0000-01-01T00:00:00Z'],
    ['/v1/audit', 'to=9999-12-31T23:59:59-14:00'],
    ['/v1/audit/export', 'to=0000-01-01T00:00:00Z'],
    ['/v1/audit/export', 'from=9999-12-31T23:59:59-14:00'],
    ['/v1/sessions', 'to=0000-01-01T00:00:00Z'],
    ['/v1/sessions', 'from=9999-12-31T23:59:59-14:00'],
  ])('answers a date PostgreSQL cannot hold with 400, the same on every list: %s?%s', async (path, query) => {
    expect400(await admin.get(`${path}?${query.replace('+', '%2B')}`), /from|to/);
  });

  it('pages with the cursors it hands out, and the audit still verifies after everything above', async () => {
    const page = await admin.get('/v1/audit?limit=2');
    expect(page.status).toBe(200);
    const next = await admin.get(`/v1/audit?limit=2&cursor=${page.body.nextCursor}`);
    expect(next.status).toBe(200);
    expect(BigInt(next.body.items[0].id)).toBeLessThan(BigInt(page.body.items[1].id));
    for (let i = 0; i < 2; i++)
      expect((await alice.post('/v1/sessions', { deviceId: device, type: 'remote-control', access: 'view' })).status).toBe(202);
    const sessions = await admin.get('/v1/sessions?limit=1');
    expect((await admin.get(`/v1/sessions?limit=1&cursor=${sessions.body.nextCursor}`)).status).toBe(200);
    expect((await admin.get('/v1/audit?from=1970-01-01T00:00:00Z&to=9999-12-31T23:59:59Z')).status).toBe(200);
    expect((await admin.get('/v1/audit/verify')).body).toMatchObject({ ok: true });
    expect(stack.apis[0].proc.proc.exitCode).toBeNull();
    expect(stack.worker.proc.exitCode).toBeNull();
  });
});
