import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { QueueName } from '../../libs/jobs/src/jobs';
import { Api } from '../support/http';
import { runCli, waitUntil } from '../support/processes';
import { freePort } from '../support/redis-server';
import { OperatorWorld, Stack, seedOperatorWorld, sessionReaches, startStack } from '../support/stack';
import { bulkDevices } from '../support/invariants';
import { tearDown } from '../support/teardown';

jest.setTimeout(300_000);

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
  text: string;
}

/** A request with any headers (Sec-Fetch-Site, Origin, Cookie: what a browser would send), on a fresh connection. */
const WORKER_METRICS_TOKEN = 'ops-metrics-token-0123456789abcdef0123456789';

function raw(base: string, method: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { method, headers: { connection: 'close', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        let body: any = text;
        try {
          body = JSON.parse(text);
        } catch {
          /* not JSON (the board's page) */
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const QUEUES = Object.values(QueueName);
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Health (API and worker) and the queue dashboard against the real processes: who gets in, what
 * the probes say when Redis is down and while the API drains, and that they reveal nothing.
 */
describe('operability: health endpoints and the queue dashboard (real api and worker)', () => {
  let stack: Stack;
  let starting: Promise<Stack> | undefined;
  let world: OperatorWorld;
  let base: string;
  let workerBase: string;
  let rootKey: string;
  let scopedAdminKey: string;
  let auditorKey: string;

  const keyFor = async (name: string, role: string, collectionIds: string[] | null) => {
    const id = (await stack.admin.post('/v1/principals', { name, kind: 'user' })).body.id as string;
    expect((await stack.admin.post('/v1/role-assignments', { principalId: id, role, collectionIds })).status).toBe(201);
    return (await stack.admin.post('/v1/api-keys', { principalId: id, name: 'ops' })).body.key as string;
  };
  /** A web console session (the cookie's name=value) for a key. */
  const signIn = async (key: string) => {
    const r = await fetch(`${base}/console/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-requested-with': 'rcflow-console' },
      body: JSON.stringify({ apiKey: key }),
    });
    expect(r.status).toBe(201);
    return r.headers.get('set-cookie')!.split(';')[0];
  };

  beforeAll(async () => {
    const workerPort = await freePort();
    stack = await (starting = startStack('ops', {
      AGENT_TRANSPORT: 'loopback',
      WORKER_HTTP_PORT: String(workerPort),
      METRICS_TOKEN: WORKER_METRICS_TOKEN,
    }));
    base = stack.apis[0].api.base;
    workerBase = `http://127.0.0.1:${workerPort}`;
    rootKey = stack.admin.key!;
    world = await seedOperatorWorld(stack.admin);
    scopedAdminKey = await keyFor('desk-admin', 'full_administrator', [world.ids.desks]);
    auditorKey = await keyFor('audrey', 'read_only_auditor', null);
  });
  afterAll(() => tearDown({ stack: async () => (stack ?? (await starting?.catch(() => undefined)))?.stop() }));

  describe('health', () => {
    it('API: live and ready say ok with a status per dependency, unauthenticated, and nothing more', async () => {
      const live = await raw(base, 'GET', '/health/live');
      expect(live.status).toBe(200);
      expect(live.body).toMatchObject({ status: 'ok', details: { process: { status: 'up' } } });
      const ready = await raw(base, 'GET', '/health/ready');
      expect(ready.status).toBe(200);
      expect(ready.body).toEqual({
        status: 'ok',
        info: { database: { status: 'up' }, redis: { status: 'up' }, draining: { status: 'up' } },
        error: {},
        details: { database: { status: 'up' }, redis: { status: 'up' }, draining: { status: 'up' } },
      });
      expect(ready.headers['cache-control']).toMatch(/no-store/);
      // The first health route still answers as before.
      expect(await raw(base, 'GET', '/health')).toMatchObject({ status: 200, body: { status: 'ok' } });
    });

    it('worker: its ops listener answers live and ready (PostgreSQL, Redis, not draining)', async () => {
      expect(await raw(workerBase, 'GET', '/health/live')).toMatchObject({ status: 200, body: { status: 'ok' } });
      const ready = await raw(workerBase, 'GET', '/health/ready');
      expect(ready.status).toBe(200);
      expect(ready.body.details).toEqual({ database: { status: 'up' }, redis: { status: 'up' }, draining: { status: 'up' } });
      expect(stack.worker.output).toContain(`health on ${workerBase}/health/ready`);
    });

    it("worker: its ops listener serves /metrics to METRICS_TOKEN only, with the worker's own counters", async () => {
      const [device] = await bulkDevices(stack.ds, world.ids.desks, 'OPS-METRICS', 1);
      const asked = await stack.admin
        .as(world.keys.alice)
        .post('/v1/sessions', { deviceId: device, type: 'remote-control', access: 'full' });
      expect(await sessionReaches(stack.admin, asked.body.id, ['active', 'rejected', 'failed'], 30_000)).toBe('active');
      const scrape = await raw(workerBase, 'GET', '/metrics', { authorization: `Bearer ${WORKER_METRICS_TOKEN}` });
      expect(scrape.status).toBe(200);
      // The worker made the validating → … → active steps: its own registry counted them.
      const active = /^rcflow_session_transitions_total\{from="[a-z_]+",to="active"\} (\d+)/m.exec(scrape.body as string);
      expect(Number(active?.[1])).toBeGreaterThanOrEqual(1);
      expect(scrape.body).toMatch(/^rcflow_process_cpu_seconds_total /m);
      expect((await raw(workerBase, 'GET', '/metrics')).status).toBe(401);
      expect((await raw(workerBase, 'GET', '/metrics', { authorization: `Bearer ${WORKER_METRICS_TOKEN}x` })).status).toBe(401);
    });

    it('the health routes are in the OpenAPI document (the board is not)', async () => {
      const doc = (await raw(base, 'GET', '/docs/openapi.json')).body;
      expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/health', '/health/live', '/health/ready']));
      expect(Object.keys(doc.paths).filter((p) => p.startsWith('/admin'))).toEqual([]);
    });
  });

  describe('queue dashboard at /admin/queues', () => {
    it('a full administrator by API key: 200, and every queue is listed in the JSON of its API', async () => {
      const page = await raw(base, 'GET', '/admin/queues', { authorization: `Bearer ${rootKey}` });
      expect(page.status).toBe(200);
      expect(page.headers['content-type']).toMatch(/text\/html/);
      expect(page.text).toContain('rcflow queues');
      const r = await raw(base, 'GET', '/admin/queues/api/queues', { authorization: `Bearer ${rootKey}` });
      expect(r.status).toBe(200);
      expect((r.body.queues as { name: string }[]).map((q) => q.name).sort()).toEqual([...QUEUES].sort());
    });

    it('no key: 401; a bad key: 401; an operator, an auditor, an administrator of some collections only: 403 — page, assets and API alike', async () => {
      for (const path of ['/admin/queues', '/admin/queues/api/queues', '/admin/queues/static/css/x.css']) {
        const none = await raw(base, 'GET', path);
        expect([path, none.status, none.body.error?.code]).toEqual([path, 401, 'unauthenticated']);
        const bad = await raw(base, 'GET', path, { authorization: `Bearer rcf_00000000-0000-0000-0000-000000000000.${'x'.repeat(43)}` });
        expect([path, bad.status]).toEqual([path, 401]);
        for (const key of [world.keys.bob, auditorKey, scopedAdminKey]) {
          const r = await raw(base, 'GET', path, { authorization: `Bearer ${key}` });
          expect([path, r.status, r.body.error?.code]).toEqual([path, 403, 'forbidden']);
        }
      }
      // Writes too, whoever is not a full administrator.
      const pause = await raw(base, 'PUT', '/admin/queues/api/queues/schedules/pause', { authorization: `Bearer ${world.keys.bob}` });
      expect(pause.status).toBe(403);
      const open = await raw(base, 'PUT', '/admin/queues/api/queues/schedules/pause');
      expect(open.status).toBe(401);
      expect(
        (await raw(base, 'GET', '/admin/queues/api/queues', { authorization: `Bearer ${rootKey}` })).body.queues.some(
          (q: any) => q.isPaused,
        ),
      ).toBe(false);
    });

    it("the web console's cookie opens the page in a browser; its writes need proof that they come from this origin", async () => {
      const cookie = await signIn(rootKey);
      expect((await raw(base, 'GET', '/admin/queues', { cookie })).status).toBe(200);
      expect((await raw(base, 'GET', '/admin/queues/api/queues', { cookie })).status).toBe(200);
      const pausePath = '/admin/queues/api/queues/schedules/pause';
      const resumePath = '/admin/queues/api/queues/schedules/resume';
      const paused = async () =>
        ((await raw(base, 'GET', '/admin/queues/api/queues', { cookie })).body.queues as { name: string; isPaused: boolean }[]).find(
          (q) => q.name === 'schedules',
        )!.isPaused;
      // Cross-site (a form or script of another site, had the cookie been sent) or no browser proof at all: refused, nothing paused.
      const crossSite: Record<string, string>[] = [
        {},
        { 'sec-fetch-site': 'cross-site' },
        { 'sec-fetch-site': 'same-site' },
        { origin: 'http://evil.example' },
      ];
      for (const headers of crossSite) {
        const r = await raw(base, 'PUT', pausePath, { cookie, ...headers });
        expect([headers, r.status, r.body.error?.code]).toEqual([headers, 403, 'forbidden']);
      }
      expect(await paused()).toBe(false);
      // The board's own page: same-origin fetches.
      expect((await raw(base, 'PUT', pausePath, { cookie, 'sec-fetch-site': 'same-origin' })).status).toBe(200);
      expect(await paused()).toBe(true);
      expect((await raw(base, 'PUT', resumePath, { cookie, origin: base })).status).toBe(200);
      expect(await paused()).toBe(false);
      // The console's own header works as on the API; an API key needs no proof (a browser never sends one by itself).
      expect((await raw(base, 'PUT', pausePath, { cookie, 'x-requested-with': 'rcflow-console' })).status).toBe(200);
      expect((await raw(base, 'PUT', resumePath, { authorization: `Bearer ${rootKey}` })).status).toBe(200);
      expect(await paused()).toBe(false);
      // An operator's console session does not open the board.
      const bobCookie = await signIn(world.keys.bob);
      expect((await raw(base, 'GET', '/admin/queues', { cookie: bobCookie })).status).toBe(403);
      // Signed out: the cookie is worth nothing.
      await fetch(`${base}/console/session/logout`, { method: 'POST', headers: { cookie, 'x-requested-with': 'rcflow-console' } });
      expect((await raw(base, 'GET', '/admin/queues/api/queues', { cookie })).status).toBe(401);
    });
  });

  describe('the dashboard in a browser (headless Chromium)', () => {
    it('renders every queue for a signed-in administrator, acts from its own page, and refuses a write from a page of another origin', async () => {
      if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run scripts/test.sh (it installs Debian's chromium)`);
      const cookie = await signIn(rootKey);
      const [name, value] = cookie.split('=') as [string, string];
      // Another origin on the same host (another port: same-site, so the SameSite=Strict cookie goes along).
      const evil = createServer((_req, res) => {
        res.setHeader('content-type', 'text/html');
        res.end(
          `<form id="f" method="POST" action="${base}/admin/queues/api/queues/schedules/add"><input name="name" value="x"></form>` +
            '<script>document.getElementById("f").submit()</script>',
        );
      });
      await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
      try {
        const context = await browser.newContext();
        await context.addCookies([{ name, value, url: base, httpOnly: true, sameSite: 'Strict' }]);
        const page = await context.newPage();
        const problems: string[] = [];
        page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
        page.on('pageerror', (e) => problems.push(e.message));
        await page.goto(`${base}/admin/queues`);
        for (const q of QUEUES) await page.getByText(q, { exact: true }).first().waitFor({ timeout: 30_000 });
        // The board's own requests: same-origin fetches carrying the cookie.
        const paused = await page.evaluate(
          async (url) => (await fetch(url, { method: 'PUT', credentials: 'same-origin' })).status,
          `${base}/admin/queues/api/queues/schedules/pause`,
        );
        expect(paused).toBe(200);
        const resumed = await page.evaluate(
          async (url) => (await fetch(url, { method: 'PUT', credentials: 'same-origin' })).status,
          `${base}/admin/queues/api/queues/schedules/resume`,
        );
        expect(resumed).toBe(200);
        expect(problems.filter((p) => /Content Security Policy|Refused to/i.test(p))).toEqual([]);
        // A page of another origin posts a form to the board (a write the browser sends with the cookie): refused.
        const attack = await context.newPage();
        await attack.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
        await attack.waitForURL(`${base}/admin/queues/api/queues/schedules/add`);
        const answer = JSON.parse((await attack.locator('body').innerText()).trim()) as { error: { status: number; code: string } };
        expect(answer.error).toMatchObject({ status: 403, code: 'forbidden' }); // 403, not 401: the cookie did go along
        const counts = (await raw(base, 'GET', '/admin/queues/api/queues', { authorization: `Bearer ${rootKey}` })).body.queues.find(
          (q: { name: string }) => q.name === 'schedules',
        ).counts as Record<string, number>;
        expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(0); // no job was added
      } finally {
        await browser.close();
        await new Promise((r) => evil.close(r));
      }
    });
  });

  it('bootstrap-admin on a database with an administrator issues nothing and exits 3 (what the compose file accepts)', async () => {
    const r = await runCli(stack.env, ['bootstrap-admin', '--name', 'again']);
    expect(r.code).toBe(3);
    expect(r.output).toMatch(/a full administrator already exists \(root\)/);
    expect(r.output).not.toMatch(/rcf_/);
  });

  describe('when things go wrong', () => {
    it('Redis down: the API stays ready (degraded: it takes requests into the outbox), the worker is not ready; both recover', async () => {
      await stack.redis.kill();
      try {
        const api = await raw(base, 'GET', '/health/ready');
        expect(api.status).toBe(200);
        expect(api.body).toMatchObject({ status: 'degraded', details: { database: { status: 'up' }, redis: { status: 'degraded' } } });
        const worker = await raw(workerBase, 'GET', '/health/ready');
        expect(worker.status).toBe(503);
        expect(worker.body).toMatchObject({
          status: 'error',
          error: { redis: { status: 'down' } },
          details: { database: { status: 'up' } },
        });
        // Liveness does not depend on Redis.
        expect((await raw(workerBase, 'GET', '/health/live')).status).toBe(200);
        // Nothing about where Redis or PostgreSQL is.
        for (const text of [api.text, worker.text]) {
          expect(text).not.toContain(String(stack.redis.port));
          expect(text).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|postgres/i);
        }
      } finally {
        await stack.redis.ensureRunning();
      }
      await waitUntil(async () => (await raw(workerBase, 'GET', '/health/ready')).status === 200, 30_000, 'the worker to be ready again');
      await waitUntil(async () => (await raw(base, 'GET', '/health/ready')).body.status === 'ok', 30_000, 'the API to be ok again');
    });

    it('SIGTERM: readiness answers 503 at once while the API drains; liveness still answers', async () => {
      const api = stack.apis[0];
      const exited = api.proc.stop('SIGTERM');
      await api.proc.waitFor('SIGTERM: draining');
      const ready = await raw(base, 'GET', '/health/ready');
      expect(ready.status).toBe(503);
      expect(ready.body).toMatchObject({ error: { draining: { status: 'down' } } });
      expect(ready.headers.connection).toBe('close');
      expect((await raw(base, 'GET', '/health/live')).status).toBe(200);
      // Everything else is refused as before.
      expect((await new Api(base, rootKey).get('/v1/sessions?limit=1')).status).toBe(503);
      expect(await exited).toBe(0);
    });
  });
});
