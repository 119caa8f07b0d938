import { Api } from '../support/http';
import { RcflowProcess, runCli, waitUntil } from '../support/processes';
import { PrivateRedis } from '../support/redis-server';
import { Stack, addDevice, seedOperatorWorld, startStack } from '../support/stack';

jest.setTimeout(120_000);

/**
 * The spine as a user runs it: api and worker as separate real processes, PostgreSQL, and a Redis
 * this test can kill. The loopback agent (in the worker) plays the devices.
 */
describe('rcflow end to end (api + worker processes)', () => {
  let stack: Stack;
  let api: RcflowProcess;
  let worker: RcflowProcess;
  let env: Record<string, string>;
  let redis: Stack['redis'];
  let ds: Stack['ds'];
  let admin: Api;
  let anon: Api;
  const w: Record<string, string> = {};

  beforeAll(async () => {
    stack = await startStack('e2e', {
      AGENT_TRANSPORT: 'loopback',
      CONSENT_TIMEOUT_MS: '60000',
      LOOPBACK_AGENT: JSON.stringify({ byHostname: { 'PC-WAITS': { consent: 'silent' } } }),
    });
    ({ env, redis, ds, admin, worker } = stack);
    api = stack.apis[0].proc;
    anon = stack.apis[0].api;
    const world = await seedOperatorWorld(admin);
    Object.assign(w, world.ids, { aliceKey: world.keys.alice, bobKey: world.keys.bob, botKey: world.keys.bot });
    for (const host of ['PC-1', 'PC-2', 'PC-3', 'PC-WAITS']) w[host] = await addDevice(admin, w.desks, host);
    w.server = await addDevice(admin, w.servers, 'SRV-1');
  });

  afterAll(async () => {
    await stack?.stop();
  });

  const stateOf = async (id: string, who = admin) => (await who.get(`/v1/sessions/${id}`)).body?.state;
  const until = (id: string, states: string[], timeoutMs = 20_000) =>
    waitUntil(
      async () => {
        const s = await stateOf(id);
        return states.includes(s) ? s : null;
      },
      timeoutMs,
      `session ${id} to reach ${states.join('|')}`,
    );

  it('carries a session to active and shows its whole timeline', async () => {
    const alice = admin.as(w.aliceKey);
    const r = await alice.post('/v1/sessions', { deviceId: w['PC-1'], type: 'remote-control', access: 'full', reason: 'printer' });
    expect(r.status).toBe(202);
    expect(r.body).toEqual({ id: expect.any(String), state: 'requested', url: `/v1/sessions/${r.body.id}` });
    expect(r.headers.get('location')).toBe(r.body.url);
    await until(r.body.id, ['active']);
    const s = (await alice.get(`/v1/sessions/${r.body.id}`)).body;
    expect(s.timeline.map((e: { state: string }) => e.state)).toEqual([
      'requested',
      'validating',
      'eligible',
      'pushing_settings',
      'awaiting_consent',
      'active',
    ]);
    expect(s.decision.eligible).toBe(true);
    expect(s.decision.checks).toHaveLength(10);
    w.activeSession = r.body.id;
  });

  it('rejects a viewer who is not permitted and says why in one answer', async () => {
    const bob = admin.as(w.bobKey);
    const r = await bob.post('/v1/sessions', { deviceId: w['PC-2'], type: 'remote-control', access: 'view' });
    expect(r.status).toBe(202);
    await until(r.body.id, ['rejected']);
    const d = await bob.get(`/v1/sessions/${r.body.id}/decision`);
    expect(d.status).toBe(200);
    expect(d.body.eligible).toBe(false);
    const failed = d.body.checks.filter((c: { passed: boolean }) => !c.passed);
    expect(failed.map((c: { id: string }) => c.id)).toEqual(['permitted_viewer']);
    expect(failed[0].detail).toMatch(/bob is not in permitted viewers \[HELPDESK\]/);
  });

  it('answers a dry run with the same checks and stores nothing', async () => {
    const before = (await ds.query('SELECT count(*)::int AS n FROM sessions'))[0].n;
    const r = await admin.as(w.bobKey).post('/v1/eligibility/check', { deviceId: w['PC-3'], type: 'remote-control', access: 'view' });
    expect(r.status).toBe(200);
    expect(r.body.eligible).toBe(false);
    expect(r.body.checks).toHaveLength(10);
    expect((await ds.query('SELECT count(*)::int AS n FROM sessions'))[0].n).toBe(before);
  });

  it('honours Idempotency-Key: same body same session, other body 409', async () => {
    const bot = admin.as(w.botKey);
    const body = { deviceId: w['PC-3'], viewerId: w.alice, type: 'remote-control', access: 'full', ticketRef: 'INC-42' };
    const key = { 'Idempotency-Key': 'ticket-INC-42' };
    const [a, b] = await Promise.all([bot.post('/v1/sessions', body, key), bot.post('/v1/sessions', body, key)]);
    expect([a.status, b.status]).toEqual([202, 202]);
    expect(a.body.id).toBe(b.body.id);
    const c = await bot.post('/v1/sessions', body, key);
    expect(c.body.id).toBe(a.body.id);
    expect(c.headers.get('idempotent-replayed')).toBe('true');
    const d = await bot.post('/v1/sessions', { ...body, access: 'view' }, key);
    expect(d.status).toBe(409);
    expect(d.body.error.message).toMatch(/different request body/);
    expect((await ds.query('SELECT count(*)::int AS n FROM sessions WHERE ticket_ref = $1', ['INC-42']))[0].n).toBe(1);
    await until(a.body.id, ['active']);
  });

  it('cancels a session waiting for consent, and ends an active one', async () => {
    const alice = admin.as(w.aliceKey);
    const r = await alice.post('/v1/sessions', { deviceId: w['PC-WAITS'], type: 'remote-control', access: 'full' });
    await until(r.body.id, ['awaiting_consent']);
    const c = await alice.post(`/v1/sessions/${r.body.id}/cancel`, { reason: 'user called back' });
    expect(c.status).toBe(200);
    expect(c.body.state).toBe('cancelled');
    expect((await alice.post(`/v1/sessions/${r.body.id}/cancel`)).status).toBe(409);

    const e = await alice.post(`/v1/sessions/${w.activeSession}/cancel`);
    expect(e.status).toBe(200);
    expect(e.body.state).toBe('ended');
    expect(e.body.endedAt).not.toBeNull();
  });

  it('lists sessions in scope with keyset pagination and filters', async () => {
    const page1 = await admin.get('/v1/sessions?limit=2');
    expect(page1.status).toBe(200);
    expect(page1.body.items).toHaveLength(2);
    const page2 = await admin.get(`/v1/sessions?limit=2&cursor=${page1.body.nextCursor}`);
    const ids = [...page1.body.items, ...page2.body.items].map((s: { id: string }) => s.id);
    expect(new Set(ids).size).toBe(ids.length);
    const rejected = await admin.get('/v1/sessions?state=rejected');
    const rejectedInDb = await ds.query(`SELECT id FROM sessions WHERE state = 'rejected'`);
    expect(rejectedInDb.length).toBeGreaterThan(0); // bob's refused request, above
    expect(rejected.body.items.map((s: { id: string }) => s.id).sort()).toEqual(rejectedInDb.map((r: { id: string }) => r.id).sort());

    // A session bob may not see: on a device in Servers, asked for by the administrator.
    const hidden = await admin.post('/v1/sessions', { deviceId: w.server, type: 'remote-control', access: 'view', reason: 'maintenance' });
    expect(hidden.status).toBe(202);
    const bob = admin.as(w.bobKey);
    const seen: { id: string; deviceId: string }[] = [];
    for (let cursor: string | null = null, pages = 0; pages === 0 || cursor; pages++) {
      const r: { status: number; body: any } = await bob.get(`/v1/sessions?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      seen.push(...r.body.items);
      cursor = r.body.nextCursor;
      expect(pages).toBeLessThan(50);
    }
    // Bob's read scope is Desks: every session on a Desks device, plus any he asked for or views.
    const desks = [w['PC-1'], w['PC-2'], w['PC-3'], w['PC-WAITS']];
    const mayRead: { id: string }[] = await ds.query(
      'SELECT id FROM sessions WHERE device_id = ANY($1) OR viewer_id = $2 OR requester_id = $2',
      [desks, w.bob],
    );
    expect(mayRead.length).toBeGreaterThanOrEqual(4); // alice's, bob's rejected one, the ticket bot's, the cancelled one
    expect(seen.map((s) => s.id).sort()).toEqual(mayRead.map((r) => r.id).sort());
    expect(seen.map((s) => s.id)).toEqual(expect.arrayContaining([w.activeSession]));
    expect(seen.map((s) => s.id)).not.toContain(hidden.body.id);
    expect(seen.filter((s) => s.deviceId === w.server)).toEqual([]);
    expect((await bob.get(`/v1/sessions/${hidden.body.id}`)).status).toBe(404);
    expect((await bob.get(`/v1/sessions/${w.activeSession}`)).status).toBe(200); // same scope: Desks
  });

  it('refuses bad input with a clear 4xx and changes nothing', async () => {
    const alice = admin.as(w.aliceKey);
    const before = (await ds.query('SELECT count(*)::int AS n FROM sessions'))[0].n;
    const ok = { deviceId: w['PC-3'], type: 'remote-control', access: 'full' };
    const cases: [string, Promise<{ status: number; body: any }>, number, RegExp?][] = [
      ['no key', anon.post('/v1/sessions', ok), 401],
      ['forged key', anon.as('rcf_00000000-0000-4000-8000-000000000000.' + 'A'.repeat(43)).post('/v1/sessions', ok), 401],
      ['extra field', alice.post('/v1/sessions', { ...ok, state: 'active' }), 400, /state/],
      ['wrong type', alice.post('/v1/sessions', { ...ok, type: 'telnet' }), 400, /type/],
      ['malformed id', alice.post('/v1/sessions', { ...ok, deviceId: 'PC-3' }), 400, /deviceId/],
      ['bad JSON', alice.post('/v1/sessions', '{"deviceId":'), 400, /JSON/],
      ['oversized', alice.post('/v1/sessions', { ...ok, reason: 'x'.repeat(20_000) }), 413],
      ['unknown device', alice.post('/v1/sessions', { ...ok, deviceId: '00000000-0000-4000-8000-000000000000' }), 404],
      ['out of scope device', alice.post('/v1/sessions', { ...ok, deviceId: w.server }), 404],
      ['on behalf without right', alice.post('/v1/sessions', { ...ok, viewerId: w.bob }), 403],
      ['bad idempotency key', alice.post('/v1/sessions', ok, { 'Idempotency-Key': 'spaces are bad' }), 400],
      ['malformed path id', alice.get('/v1/sessions/not-a-uuid'), 400],
      ['unknown session', alice.get('/v1/sessions/00000000-0000-4000-8000-000000000000'), 404],
      ['bad query', alice.get('/v1/sessions?limit=100000'), 400],
      ['bad cursor', alice.get('/v1/sessions?cursor=abc'), 400],
      ['admin route as operator', alice.post('/v1/devices', { hostname: 'X' }), 403],
      ['audit as operator', alice.get('/v1/audit'), 403],
    ];
    for (const [name, p, status, msg] of cases) {
      const r = await p;
      expect({ name, status: r.status }).toEqual({ name, status });
      expect(r.body.error).toMatchObject({ status, code: expect.any(String), message: expect.any(String) });
      if (msg) expect(r.body.error.message).toMatch(msg);
    }
    expect((await ds.query('SELECT count(*)::int AS n FROM sessions'))[0].n).toBe(before);
  });

  it('keeps 202s while Redis is down and processes them when it is back (empty)', async () => {
    await redis.kill();
    const alice = admin.as(w.aliceKey);
    const r = await alice.post('/v1/sessions', { deviceId: w['PC-2'], type: 'remote-control', access: 'full' });
    expect(r.status).toBe(202);
    expect(await stateOf(r.body.id)).toBe('requested');
    expect((await ds.query('SELECT count(*)::int AS n FROM outbox'))[0].n).toBeGreaterThanOrEqual(1);
    await redis.startProcess();
    await until(r.body.id, ['active'], 60_000);
    await waitUntil(async () => (await ds.query('SELECT count(*)::int AS n FROM outbox'))[0].n === 0, 20_000, 'outbox to drain');
  });

  it('serves the OpenAPI document at /docs', async () => {
    const html = await fetch(`${anon.base}/docs`);
    expect(html.status).toBe(200);
    const doc = (await (await fetch(`${anon.base}/docs/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/sessions', '/v1/sessions/{id}/decision', '/v1/audit/verify', '/v1/eligibility/check']),
    );
  });

  it('verifies the audit chain, then fails and says where after a row is altered in the database', async () => {
    const ok = await admin.get('/v1/audit/verify');
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ ok: true, problems: [] });
    expect((await runCli(env, ['verify-audit'])).code).toBe(0);

    const [victim] = await ds.query(`SELECT id, stream, seq FROM audit_events WHERE outcome = 'active' ORDER BY id LIMIT 1`);
    await ds.transaction(async (tx) => {
      await tx.query('SET LOCAL session_replication_role = replica');
      await tx.query(`UPDATE audit_events SET reason = 'nothing to see' WHERE id = $1`, [victim.id]);
    });
    const bad = await admin.get('/v1/audit/verify');
    expect(bad.body.ok).toBe(false);
    expect(bad.body.problems[0]).toMatchObject({ stream: victim.stream, seq: victim.seq, eventId: String(victim.id) });
    const cli = await runCli(env, ['verify-audit']);
    expect(cli.code).toBe(1);
    expect(cli.output).toContain(`AUDIT TRAIL BROKEN`);
    expect(cli.output).toContain(victim.stream);
  });

  it('stops on SIGTERM: intake closes, workers drain, both exit cleanly', async () => {
    const [apiCode, workerCode] = await Promise.all([api.stop('SIGTERM'), worker.stop('SIGTERM')]);
    expect(apiCode).toBe(0);
    expect(workerCode).toBe(0);
  });

  it('refuses to start on invalid configuration or an evicting Redis, saying what to fix', async () => {
    const bad = RcflowProcess.start('api', { ...env, PORT: 'eighty', AUDIT_HMAC_KEY: 'short' });
    let w2: RcflowProcess | null = null;
    const lru = await PrivateRedis.start('allkeys-lru');
    try {
      expect(await bad.exited).toBe(78);
      expect(bad.output).toMatch(/PORT/);
      expect(bad.output).toMatch(/AUDIT_HMAC_KEY/);
      w2 = RcflowProcess.start('worker', { ...env, REDIS_URL: lru.url });
      expect(await w2.exited).not.toBe(0);
      // A JSON log line (not a terminal): its quotes come escaped.
      expect(w2.output).toMatch(/maxmemory-policy is \\"allkeys-lru\\"/);
    } finally {
      await Promise.allSettled([bad.stop('SIGKILL'), w2?.stop('SIGKILL')]);
      await lru.stop();
    }
  });
});
