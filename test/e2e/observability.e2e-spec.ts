import { Api } from '../support/http';
import { RcflowProcess } from '../support/processes';
import { freePort } from '../support/redis-server';
import { Stack, addDevice, seedOperatorWorld, sessionReaches, startStack } from '../support/stack';
import { tearDown } from '../support/teardown';

jest.setTimeout(180_000);

const METRICS_TOKEN = 'obs-metrics-token-0123456789abcdef0123456789';

/** The value of one sample of a Prometheus text exposition, or null when the series is absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | null {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m?.[1] !== name) continue;
    const have = (m[2] ?? '').split(',').filter(Boolean);
    if (want.every((w) => have.includes(w)) && have.length === want.length) return Number(m[3]);
  }
  return null;
}

/** The JSON lines a process printed (its other lines, if any, are left out). */
function jsonLines(output: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * Metrics and logs as an operator sees them, on the real stack: one API process that runs the
 * workers too (so its /metrics counts the transitions it commits), PostgreSQL, Redis, the loopback agent.
 */
describe('metrics and logs (api process with its workers)', () => {
  let stack: Stack;
  let api: RcflowProcess;
  let base: string;
  let admin: Api;
  const keys: Record<string, string> = {};
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    stack = await startStack('observe', { AGENT_TRANSPORT: 'loopback', METRICS_TOKEN, LOG_LEVEL: 'info' });
    // The API on its own with the workers in it: the separate worker stops first, so every transition is this process'.
    await stack.worker.stop();
    const port = await freePort();
    api = RcflowProcess.start('api', { ...stack.env, PORT: String(port) }, ['--with-worker']);
    stack.worker = api;
    await api.waitFor('api listening', 90_000);
    base = `http://127.0.0.1:${port}`;
    admin = new Api(base, stack.admin.key);
    const world = await seedOperatorWorld(admin);
    Object.assign(keys, world.keys, { admin: stack.admin.key! });
    Object.assign(ids, world.ids);
    ids.device = await addDevice(admin, world.ids.desks, 'PC-OBS');
  });
  afterAll(() => tearDown({ stack: () => stack?.stop() }));

  it('echoes a valid X-Request-Id, replaces an invalid one, and logs one JSON access line per request', async () => {
    const alice = admin.as(keys.alice);
    const r = await alice.post(
      '/v1/sessions',
      { deviceId: ids.device, type: 'remote-control', access: 'full', reason: 'metrics' },
      { 'X-Request-Id': 'obs-request.1' },
    );
    expect(r.status).toBe(202);
    expect(r.headers.get('x-request-id')).toBe('obs-request.1');
    ids.session = r.body.id;
    for (const bad of ['has space', 'x'.repeat(129), 'semi;colon']) {
      const b = await alice.req('GET', `/v1/sessions/${ids.session}`, undefined, { 'X-Request-Id': bad });
      expect(b.headers.get('x-request-id')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    }
    const fresh = await new Api(base).get('/v1/sessions');
    expect(fresh.status).toBe(401);
    const freshId = fresh.headers.get('x-request-id')!;
    await sessionReaches(alice, ids.session, ['active']);

    const lines = jsonLines(api.output);
    expect(lines.find((l) => l.reqId === 'obs-request.1' && l.msg === 'request')).toMatchObject({
      level: 'info',
      method: 'POST',
      path: '/v1/sessions',
      status: 202,
      principalId: ids.alice,
      durationMs: expect.any(Number),
    });
    // An unauthenticated call is logged too, under the id it was given, without a principal.
    const refused = lines.find((l) => l.reqId === freshId && l.msg === 'request');
    expect(refused).toMatchObject({ method: 'GET', path: '/v1/sessions', status: 401 });
    expect(refused).not.toHaveProperty('principalId');
  });

  it('logs one info line per transition of the session, after it committed', async () => {
    const transitions = jsonLines(api.output).filter((l) => l.msg === 'session transition' && l.sessionId === ids.session);
    expect(transitions.map((l) => [l.from, l.to])).toEqual([
      [null, 'requested'],
      ['requested', 'validating'],
      ['validating', 'eligible'],
      ['eligible', 'pushing_settings'],
      ['pushing_settings', 'awaiting_consent'],
      ['awaiting_consent', 'active'],
    ]);
    for (const l of transitions) expect(l).toMatchObject({ level: 'info', deviceId: ids.device, actor: expect.any(Object) });
    expect(transitions[0]).toMatchObject({ actor: { id: ids.alice, kind: 'principal' } });
  });

  it('serves /metrics to the metrics token and to a full administrator, and counts what happened', async () => {
    const scrape = await new Api(base, METRICS_TOKEN).get('/metrics');
    expect(scrape.status).toBe(200);
    expect(scrape.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = scrape.body as string;
    const path = [
      ['none', 'requested'],
      ['requested', 'validating'],
      ['validating', 'eligible'],
      ['eligible', 'pushing_settings'],
      ['pushing_settings', 'awaiting_consent'],
      ['awaiting_consent', 'active'],
    ];
    for (const [from, to] of path)
      expect([from, to, sample(text, 'rcflow_session_transitions_total', { from, to })]).toEqual([from, to, 1]);
    // Series of moves that did not happen exist at zero (rate() sees their first event).
    expect(sample(text, 'rcflow_session_transitions_total', { from: 'active', to: 'ended' })).toBe(0);
    expect(sample(text, 'rcflow_session_request_to_active_seconds_count')).toBe(1);
    expect(sample(text, 'rcflow_transition_batch_size_count')).toBeGreaterThanOrEqual(3);
    for (const queue of ['sessions', 'ticket-writebacks', 'schedules'])
      for (const state of ['waiting', 'active', 'delayed', 'failed'])
        expect([queue, state, sample(text, 'rcflow_queue_jobs', { queue, state })]).toEqual([queue, state, expect.any(Number)]);
    expect(sample(text, 'rcflow_outbox_pending')).toBe(0);
    expect(sample(text, 'rcflow_outbox_lag_seconds')).toBe(0);
    expect(sample(text, 'rcflow_agents_connected')).toBe(0); // loopback agents hold no socket
    expect(sample(text, 'rcflow_eligibility_refusals_total', { check: 'permitted_viewer' })).toBe(0);
    expect(sample(text, 'rcflow_process_resident_memory_bytes')).toBeGreaterThan(0);

    // bob is refused: the refusal is counted by the check that failed.
    const refused = await admin.as(keys.bob).post('/v1/sessions', { deviceId: ids.device, type: 'remote-control', access: 'view' });
    await sessionReaches(admin, refused.body.id, ['rejected']);
    const asAdmin = await admin.get('/metrics');
    expect(asAdmin.status).toBe(200);
    expect(sample(asAdmin.body as string, 'rcflow_eligibility_refusals_total', { check: 'permitted_viewer' })).toBe(1);

    // Ending the active session observes how long it was active.
    const ended = await admin.as(keys.alice).post(`/v1/sessions/${ids.session}/cancel`, { reason: 'done' });
    expect(ended.body.state).toBe('ended');
    const after = (await new Api(base, METRICS_TOKEN).get('/metrics')).body as string;
    expect(sample(after, 'rcflow_session_duration_seconds_count', { end: 'ended' })).toBe(1);
    expect(sample(after, 'rcflow_session_transitions_total', { from: 'active', to: 'ended' })).toBe(1);
  });

  it('refuses /metrics without credentials (401), with a wrong token (401) and to a key without admin.read everywhere (403)', async () => {
    const anon = await new Api(base).get('/metrics');
    expect(anon.status).toBe(401);
    expect(anon.body.error).toMatchObject({ status: 401, code: 'unauthenticated' });
    expect((await new Api(base, `${METRICS_TOKEN}x`).get('/metrics')).status).toBe(401);
    const operator = await admin.as(keys.bob).get('/metrics');
    expect(operator.status).toBe(403);
    expect(operator.body.error.message).toMatch(/admin\.read over all collections/);
  });

  it('logs /health and /metrics at debug only, and no secret anywhere', async () => {
    const secret = 'obs-body-secret-value-42';
    // A key in X-Api-Key and a secret in the body of a request that is refused on its merits.
    const r = await new Api(base).req(
      'POST',
      '/v1/sessions',
      { deviceId: ids.device, secret, password: secret },
      { 'X-Api-Key': keys.alice, 'X-Request-Id': 'obs-secret-1' },
    );
    expect(r.status).toBe(400);
    expect((await new Api(base).get('/health')).status).toBe(200);
    await api.waitFor('"reqId":"obs-secret-1"');
    const lines = jsonLines(api.output);
    expect(lines.filter((l) => l.msg === 'request' && typeof l.path === 'string' && /^\/(health|metrics)/.test(l.path))).toEqual([]);
    const everything = api.output + stack.apis[0].proc.output;
    for (const key of Object.values(keys)) expect(everything).not.toContain(key.split('.')[1]);
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(METRICS_TOKEN);
    // Every line of the API's output is JSON (NODE_ENV=test, not a terminal).
    expect(api.output.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{'))).toEqual([]);
  });
});
