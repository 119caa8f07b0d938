import { WebSocket } from 'ws';
import { AGENT_WS_PATH } from '../../libs/agent-protocol/src';
import { VERIFY_LOCK_KEY } from '../../apps/api/src/audit/verify-lock';
import { Api } from '../support/http';
import { presence } from '../support/raw-agent';
import { waitUntil } from '../support/processes';
import { OperatorWorld, Stack, seedOperatorWorld, startStack } from '../support/stack';

jest.setTimeout(120_000);

const PER_PRINCIPAL = 100;
const PER_ADDRESS = 30;
const UPGRADES = 60;
const REFUSAL_WINDOW_SECONDS = 5;

/** One WebSocket upgrade attempt; the HTTP status it was answered with (101 when it opened). */
function upgrade(base: string, credential: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}${AGENT_WS_PATH}`, { headers: { authorization: `Bearer ${credential}` } });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

/** An aggregated refusal as audited (a lone refusal of old had no count). */
interface Refused {
  data: { count?: number; reasons: Record<string, number>; remote: string };
}

const HELMET = {
  'content-security-policy': expect.stringContaining("default-src 'self'"),
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'SAMEORIGIN',
  'strict-transport-security': expect.stringContaining('max-age='),
  'referrer-policy': 'no-referrer',
};
const headersOf = (h: Headers) => Object.fromEntries(h.entries());

/**
 * The edge of the API (issue 9, "Transport and limits"): limits kept in Redis and shared by two
 * API processes, X-Forwarded-For not trusted from a client that is not a configured proxy,
 * separate budgets, refused agent upgrades audited in aggregates, API key revocation seen by the
 * other process within a second, verify single-flight, security headers everywhere.
 */
describe('the API edge, with two API processes on one Redis and PostgreSQL', () => {
  let stack: Stack;
  let world: OperatorWorld;
  let one: Api;
  let two: Api;

  beforeAll(async () => {
    stack = await startStack(
      'edge',
      {
        AGENT_TRANSPORT: 'websocket',
        RATE_LIMIT_PER_MINUTE: String(PER_PRINCIPAL),
        RATE_LIMIT_ADDRESS_PER_MINUTE: String(PER_ADDRESS),
        RATE_LIMIT_UPGRADE_PER_MINUTE: String(UPGRADES),
        AGENT_REFUSAL_AUDIT_SECONDS: String(REFUSAL_WINDOW_SECONDS),
      },
      2,
    );
    world = await seedOperatorWorld(stack.admin);
    one = stack.apis[0].api;
    two = stack.apis[1].api;
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('puts helmet headers on a 200, a 4xx and the Swagger page, and no-store on every answer carrying a secret', async () => {
    const ok = await one.get('/health');
    expect(ok.status).toBe(200);
    expect(headersOf(ok.headers)).toMatchObject(HELMET);
    const refused = await one.get('/v1/sessions');
    expect(refused.status).toBe(401);
    expect(headersOf(refused.headers)).toMatchObject(HELMET);
    const notFound = await stack.admin.get('/v1/no-such-route');
    expect(notFound.status).toBe(404);
    expect(headersOf(notFound.headers)).toMatchObject(HELMET);

    // The Swagger page: under the same CSP, and every script it loads is a same-origin file the CSP allows.
    const docs = await fetch(`${one.base}/docs`);
    const html = await docs.text();
    expect(docs.status).toBe(200);
    expect(headersOf(docs.headers)).toMatchObject(HELMET);
    // Served over plain http here (no https PUBLIC_URL): the browser must not be told to fetch the scripts over https.
    expect(docs.headers.get('content-security-policy')).not.toContain('upgrade-insecure-requests');
    const scripts = [...html.matchAll(/<script([^>]*)>/g)].map((m) => m[1]);
    expect(scripts.length).toBeGreaterThanOrEqual(3);
    for (const attrs of scripts) {
      const src = /src=["']([^"']+)["']/.exec(attrs)?.[1];
      expect(src).toBeDefined(); // an inline script would be blocked by script-src 'self'
      expect(src).not.toMatch(/^[a-z]+:\/\//);
      const js = await fetch(new URL(src!, `${one.base}/docs`)); // resolved as the browser does
      expect(js.status).toBe(200);
      expect(headersOf(js.headers)).toMatchObject(HELMET);
    }
    const openapi = await fetch(`${one.base}/docs/openapi.json`);
    expect(openapi.status).toBe(200);
    expect(headersOf(openapi.headers)).toMatchObject(HELMET);

    // Secrets: API key, enrolment token, the device credential of an enrolment, a viewer token (or its refusal).
    const key = await stack.admin.post('/v1/api-keys', { principalId: world.ids.bob, name: 'headers' });
    expect(key.status).toBe(201);
    expect(key.headers.get('cache-control')).toBe('no-store');
    const token = await stack.admin.post('/v1/enrolment-tokens', { hostname: 'PC-HEADERS' });
    expect(token.status).toBe(201);
    expect(token.headers.get('cache-control')).toBe('no-store');
    const enrolled = await one.post('/v1/agent/enrol', {
      token: token.body.token,
      hostname: 'PC-HEADERS',
      presence: presence({ loggedOnUser: null }),
    });
    expect(enrolled.status).toBe(201);
    expect(enrolled.body.credential).toMatch(/^rcd_/);
    expect(enrolled.headers.get('cache-control')).toBe('no-store');
    const viewer = await stack.admin.post(`/v1/sessions/00000000-0000-4000-8000-000000000000/viewer-token`);
    expect(viewer.status).toBe(404);
    expect(viewer.headers.get('cache-control')).toBe('no-store');

    // CORS is off unless CORS_ORIGINS names origins: a preflight from elsewhere gets no grant.
    const preflight = await fetch(`${one.base}/v1/sessions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('holds one principal to its limit across both API processes (the sum, not twice it)', async () => {
    const alice = world.keys.alice;
    const flood = await Promise.all(
      Array.from({ length: PER_PRINCIPAL * 2 }, (_, i) => (i % 2 ? one : two).as(alice).get('/v1/sessions?limit=1')),
    );
    const served = flood.filter((r) => r.status === 200).length;
    const limited = flood.filter((r) => r.status === 429);
    expect(served + limited.length).toBe(flood.length);
    expect(served).toBeLessThanOrEqual(PER_PRINCIPAL);
    expect(served).toBeGreaterThanOrEqual(PER_PRINCIPAL * 0.9);
    for (const r of limited) expect(r.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
    // bob's budget is his own.
    expect((await two.as(world.keys.bob).get('/v1/sessions?limit=1')).status).toBe(200);
  });

  it('refuses a revoked API key on the other process within a second', async () => {
    const created = await stack.admin.post('/v1/api-keys', { principalId: world.ids.bob, name: 'to revoke' });
    const bob = two.as(created.body.key);
    expect((await bob.get('/v1/sessions?limit=1')).status).toBe(200); // cached by process two
    const revoked = await stack.admin.req('DELETE', `/v1/api-keys/${created.body.id}`);
    expect(revoked.status).toBe(200);
    const at = Date.now();
    await waitUntil(async () => (await bob.get('/v1/sessions?limit=1')).status === 401, 3000, 'the revoked key refused');
    expect(Date.now() - at).toBeLessThan(1000);
  });

  it('does not let a client change its address with X-Forwarded-For, and keeps health and enrolment on budgets of their own', async () => {
    const flood = await Promise.all(
      Array.from({ length: PER_ADDRESS * 3 }, (_, i) =>
        (i % 2 ? one : two).req('GET', '/v1/sessions', undefined, { 'x-forwarded-for': `203.0.113.${i + 1}` }),
      ),
    );
    const counted = flood.filter((r) => r.status === 401).length;
    expect(counted).toBeLessThanOrEqual(PER_ADDRESS);
    expect(flood.filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(PER_ADDRESS * 2);
    // The address is out of its general budget; health and enrolment still answer.
    expect((await one.get('/health')).status).toBe(200);
    const enrol = await two.post('/v1/agent/enrol', { token: 'rce_nope', hostname: 'PC-X', presence: {} });
    expect(enrol.status).not.toBe(429);
  });

  it('limits agent upgrades per address and audits the refused ones in one event per source and window', async () => {
    const [{ last }]: { last: string }[] = await stack.ds.query(`SELECT coalesce(max(id), 0) AS last FROM audit_events`);
    const attempts = UPGRADES + 40;
    const statuses = await Promise.all(Array.from({ length: attempts }, () => upgrade(one.base, 'rcd_not-a-credential')));
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(UPGRADES);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(40);
    expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
    const countOf = (rows: Refused[]) => rows.reduce((n, r) => n + (r.data.count ?? 1), 0);
    const events = await waitUntil(
      async () => {
        const rows: Refused[] = await stack.ds.query(
          `SELECT data FROM audit_events WHERE action = 'agent.connect' AND outcome = 'refused' AND id > $1 ORDER BY id`,
          [last],
        );
        return countOf(rows) >= attempts ? rows : null;
      },
      (REFUSAL_WINDOW_SECONDS + 10) * 1000,
      'the refused upgrades audited',
    );
    // One event per source and window (the attempts may straddle two windows), counting every attempt.
    expect(events.length).toBeLessThanOrEqual(2);
    expect(countOf(events)).toBe(attempts);
    for (const e of events) expect(e.data.remote).toBe('127.0.0.1');
    const reasons = events.map((e) => Object.keys(e.data.reasons)).flat();
    expect(new Set(reasons)).toEqual(new Set(['rate limited', 'missing or malformed device credential']));
    expect((await stack.admin.get('/v1/audit/verify')).body).toMatchObject({ ok: true });
  });

  it('runs one audit verification at a time across processes: another caller gets 429 meanwhile', async () => {
    const runner = stack.ds.createQueryRunner();
    await runner.connect();
    try {
      // What a verification running in a third process holds.
      await runner.query('SELECT pg_advisory_lock($1)', [VERIFY_LOCK_KEY]);
      const [a, b] = await Promise.all([stack.admin.get('/v1/audit/verify'), two.as(stack.admin.key!).get('/v1/audit/verify')]);
      for (const r of [a, b]) {
        expect(r.status).toBe(429);
        expect(r.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
      }
      await runner.query('SELECT pg_advisory_unlock($1)', [VERIFY_LOCK_KEY]);
      const after = await stack.admin.get('/v1/audit/verify');
      expect(after.status).toBe(200);
      expect(after.body).toMatchObject({ ok: true });
    } finally {
      await runner.release();
    }
  });
});
