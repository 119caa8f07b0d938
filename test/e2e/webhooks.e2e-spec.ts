import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Api } from '../support/http';
import { waitUntil } from '../support/processes';
import { OperatorWorld, Stack, addDevice, seedOperatorWorld, sessionReaches, startStack } from '../support/stack';
import { tearDown } from '../support/teardown';

jest.setTimeout(180_000);

type Json = Record<string, any>;

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
  answered: number;
}

/** A webhook receiver on a free port: every request recorded; each path answers as its plan says. */
class Receiver {
  readonly received: Received[] = [];
  /** Per path: statuses to answer in turn (the last one repeats); unknown paths answer 204. */
  readonly plans = new Map<string, number[]>();
  private server: Server | null = null;
  private port = 0;

  async listen(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '/';
        const plan = this.plans.get(path) ?? [204];
        const status = plan.length > 1 ? plan.shift()! : plan[0];
        this.received.push({ path, headers: req.headers, raw: Buffer.concat(chunks).toString('utf8'), answered: status });
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status >= 300 ? 'receiver says no '.repeat(100) : 'ok');
      });
    });
    const server = this.server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  at(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** The receiver's check, written from the Standard Webhooks spec rather than with rcflow's signer. */
function signatureValid(secret: string, r: Received): boolean {
  const id = r.headers['webhook-id'] as string;
  const ts = r.headers['webhook-timestamp'] as string;
  const sigs = (r.headers['webhook-signature'] as string).split(' ');
  if (!id || !/^\d+$/.test(ts) || Math.abs(Date.now() / 1000 - Number(ts)) > 300) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${ts}.${r.raw}`).digest();
  return sigs.some((s) => {
    const [v, b64] = s.split(',');
    const given = Buffer.from(b64 ?? '', 'base64');
    return v === 'v1' && given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/**
 * Outbound webhooks on real processes: an API and a worker on PostgreSQL and Redis, loopback agents,
 * and a local HTTP receiver. Subscriptions through the API, a session's lifecycle arriving signed
 * per Standard Webhooks, retries with backoff to delivered, attempts running out to dead and a
 * re-drive, bad input refused with nothing stored, non-administrators refused.
 */
describe('outbound webhooks end to end (api, worker, loopback agents, a local receiver)', () => {
  let stack: Stack;
  let starting: Promise<Stack> | undefined;
  let world: OperatorWorld;
  const receiver = new Receiver();

  beforeAll(async () => {
    await receiver.listen();
    stack = await (starting = startStack('webhooks', {
      AGENT_TRANSPORT: 'loopback',
      RATE_LIMIT_PER_MINUTE: '100000',
      WEBHOOK_MAX_ATTEMPTS: '5',
      WEBHOOK_BACKOFF_MS: '100',
      WEBHOOK_BACKOFF_CAP_MS: '400',
      WEBHOOK_DISPATCH_INTERVAL_MS: '100',
      WEBHOOK_TIMEOUT_MS: '3000',
    }));
    world = await seedOperatorWorld(stack.admin);
  });
  afterAll(() =>
    tearDown({
      receiver: () => receiver.close(),
      stack: async () => (stack ?? (await starting?.catch(() => undefined)))?.stop(),
    }),
  );

  const subscribe = async (path: string, eventTypes: string[], extra: Json = {}) => {
    const r = await stack.admin.post('/v1/webhooks', { url: receiver.url(path), eventTypes, ...extra });
    expect(r.status).toBe(201);
    expect(r.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    return r.body as { id: string; secret: string };
  };
  const deliveries = async (webhookId: string, query = '') =>
    ((await stack.admin.get(`/v1/webhooks/${webhookId}/deliveries${query}`)).body as { items: Json[] }).items;
  const deliveryOf = async (deliveryId: string) => (await stack.admin.get(`/v1/webhooks/deliveries/${deliveryId}`)).body as Json;
  const settled = (deliveryId: string, status: string) =>
    waitUntil(
      async () => {
        const d = await deliveryOf(deliveryId);
        return d.status === status ? d : null;
      },
      30_000,
      `delivery ${deliveryId} ${status}`,
    );

  it('tells a session lifecycle to a subscriber, each event once, signed, with the audit view as data', async () => {
    const hook = await subscribe('/lifecycle', ['session.*']);
    const got = await stack.admin.get(`/v1/webhooks/${hook.id}`);
    expect(got.status).toBe(200);
    expect(JSON.stringify(got.body)).not.toContain(hook.secret);
    expect(got.body).toMatchObject({ url: receiver.url('/lifecycle'), eventTypes: ['session.*'], enabled: true, collectionId: null });

    const deviceId = await addDevice(stack.admin, world.ids.desks, 'WH-1');
    const alice = stack.admin.as(world.keys.alice);
    const s = await alice.post('/v1/sessions', { deviceId, type: 'remote-control', access: 'full' });
    expect(s.status).toBe(202);
    const sessionId = s.body.id as string;
    expect(await sessionReaches(stack.admin, sessionId, ['active', 'rejected', 'failed'])).toBe('active');

    const events = ((await stack.admin.get(`/v1/audit?sessionId=${sessionId}&limit=100`)).body.items as Json[]).filter((e) =>
      e.action.startsWith('session.'),
    );
    const actions = events.map((e) => e.action).reverse();
    expect(actions).toContain('session.active');
    // Every event of the session arrives, once.
    const mine = () => receiver.at('/lifecycle').filter((r) => JSON.parse(r.raw).data.sessionId === sessionId);
    await waitUntil(async () => mine().length >= events.length, 20_000, 'the session events at the receiver');
    const received = mine();
    expect(received.map((r) => JSON.parse(r.raw).type).sort()).toEqual([...actions].sort());
    expect(new Set(received.map((r) => r.headers['webhook-id'])).size).toBe(received.length);
    for (const r of received) {
      expect(signatureValid(hook.secret, r)).toBe(true);
      expect(r.headers['content-type']).toBe('application/json');
      const body = JSON.parse(r.raw) as Json;
      const event = events.find((e) => e.id === body.data.id);
      // The data is the event as GET /v1/audit shows it.
      expect(body).toEqual({ type: event!.action, timestamp: event!.occurredAt, data: event });
    }
    // A signature does not survive a changed body or another secret.
    const tampered = { ...received[0], raw: received[0].raw.replace('session', 'sessiom') };
    expect(signatureValid(hook.secret, tampered)).toBe(false);
    const other = await subscribe('/other', ['webhook.nothing']);
    expect(signatureValid(other.secret, received[0])).toBe(false);

    // The log says delivered, with the webhook-id the receiver saw.
    const log = await waitUntil(
      async () => {
        const items = await deliveries(hook.id, '?status=delivered&limit=500');
        return items.filter((d) => received.some((r) => r.headers['webhook-id'] === d.id)).length === received.length ? items : null;
      },
      10_000,
      'the delivery log',
    );
    expect(log.every((d) => d.attempts === 1 && d.lastStatusCode === 204)).toBe(true);
    // Nothing else was sent to it: the device's own administration events are not session events.
    expect(receiver.at('/lifecycle').every((r) => JSON.parse(r.raw).type.startsWith('session.'))).toBe(true);
    expect(receiver.at('/other')).toEqual([]);
  });

  it('retries a failing receiver with backoff: three 500s, then 200 → delivered after 4 attempts, one webhook-id', async () => {
    receiver.plans.set('/flaky', [500, 500, 500, 200]);
    const hook = await subscribe('/flaky', ['session.active']);
    const ping = await stack.admin.post(`/v1/webhooks/${hook.id}/test`);
    expect(ping).toMatchObject({ status: 202, body: { status: 'pending', eventType: 'webhook.ping', webhookId: hook.id } });
    const done = await settled(ping.body.id, 'delivered');
    expect(done.attempts).toBe(4);
    expect(done.attemptLog.map((a: Json) => [a.cycle, a.attempt, a.statusCode])).toEqual([
      [0, 1, 500],
      [0, 2, 500],
      [0, 3, 500],
      [0, 4, 200],
    ]);
    expect(done.attemptLog[0].error).toBe('answered 500');
    // Only a short excerpt of what the receiver said is kept.
    expect(done.attemptLog[0].responseExcerpt.length).toBeLessThanOrEqual(256);
    expect(done.payload).toMatchObject({ type: 'webhook.ping', data: { webhookId: hook.id } });
    const got = receiver.at('/flaky');
    expect(got).toHaveLength(4);
    expect(new Set(got.map((r) => r.headers['webhook-id']))).toEqual(new Set([ping.body.id]));
    expect(new Set(got.map((r) => r.raw)).size).toBe(1);
    expect(got.every((r) => signatureValid(hook.secret, r))).toBe(true);
  });

  it('a receiver that always fails: dead after WEBHOOK_MAX_ATTEMPTS, re-driven once it is back, delivered with the same id', async () => {
    receiver.plans.set('/down', [503]);
    const hook = await subscribe('/down', ['webhook.ping']);
    const ping = await stack.admin.post(`/v1/webhooks/${hook.id}/test`);
    expect(ping.status).toBe(202);
    const dead = await settled(ping.body.id, 'dead');
    expect(dead).toMatchObject({ attempts: 5, lastStatusCode: 503, lastError: expect.stringContaining('gave up after 5 attempts') });
    expect(receiver.at('/down')).toHaveLength(5);
    expect((await deliveries(hook.id, '?status=dead')).map((d) => d.id)).toEqual([ping.body.id]);
    receiver.plans.set('/down', [200]);
    const redriven = await stack.admin.post(`/v1/webhooks/deliveries/${ping.body.id}/redrive`);
    expect(redriven).toMatchObject({ status: 202, body: { status: 'pending', attempts: 0, redrives: 1 } });
    const done = await settled(ping.body.id, 'delivered');
    expect(done.attemptLog.map((a: Json) => [a.cycle, a.attempt, a.statusCode])).toEqual([
      [0, 1, 503],
      [0, 2, 503],
      [0, 3, 503],
      [0, 4, 503],
      [0, 5, 503],
      [1, 1, 200],
    ]);
    const got = receiver.at('/down');
    expect(got).toHaveLength(6);
    expect(new Set(got.map((r) => r.headers['webhook-id']))).toEqual(new Set([ping.body.id]));
    expect((await stack.admin.post(`/v1/webhooks/deliveries/${ping.body.id}/redrive`)).status).toBe(409);
    const audit = (await stack.admin.get('/v1/audit?action=webhook.delivery_redriven')).body.items as Json[];
    expect(audit.map((e) => e.data.deliveryId)).toContain(ping.body.id);
  });

  it('rotates a secret: both sign for the overlap, then only the new one', async () => {
    const hook = await subscribe('/rotate', ['x.none']);
    const ping = async () => {
      const sent = await stack.admin.post(`/v1/webhooks/${hook.id}/test`);
      expect(sent.status).toBe(202);
      await settled(sent.body.id, 'delivered');
      return receiver.at('/rotate').find((r) => r.headers['webhook-id'] === sent.body.id)!;
    };
    expect((await stack.admin.post(`/v1/webhooks/${hook.id}/secret`, { previousValidSeconds: -1 })).status).toBe(400);
    const rotated = await stack.admin.post(`/v1/webhooks/${hook.id}/secret`);
    expect(rotated.status).toBe(201);
    expect(Date.parse(rotated.body.previousSecretValidUntil)).toBeGreaterThan(Date.now() + 3600_000);
    const during = await ping();
    expect((during.headers['webhook-signature'] as string).split(' ')).toHaveLength(2);
    expect(signatureValid(rotated.body.secret, during)).toBe(true);
    expect(signatureValid(hook.secret, during)).toBe(true);

    const again = await stack.admin.post(`/v1/webhooks/${hook.id}/secret`, { previousValidSeconds: 0 });
    expect(again.body.previousSecretValidUntil).toBeNull();
    const after = await ping();
    expect(signatureValid(again.body.secret, after)).toBe(true);
    expect(signatureValid(rotated.body.secret, after)).toBe(false);
    expect(signatureValid(hook.secret, after)).toBe(false);
  });

  it('refuses bad bodies, queries and ids with 400 and stores nothing', async () => {
    const count = async () => Number((await stack.ds.query('SELECT count(*)::int AS n FROM webhook_subscriptions'))[0].n);
    const before = await count();
    const url = receiver.url('/never');
    const bad: [unknown, string][] = [
      [{ eventTypes: ['session.*'] }, 'url'],
      [{ url, eventTypes: [] }, 'eventTypes'],
      [{ url, eventTypes: ['Session.Active'] }, 'eventTypes.0'],
      [{ url, eventTypes: ['session.*', 'session.*'] }, 'eventTypes'],
      [{ url, eventTypes: ['session.**'] }, 'eventTypes.0'],
      [{ url: 'ftp://127.0.0.1/x', eventTypes: ['*'] }, 'url'],
      [{ url: 'http://user:pw@127.0.0.1/x', eventTypes: ['*'] }, 'url'],
      [{ url: 'not a url', eventTypes: ['*'] }, 'url'],
      [{ url, eventTypes: ['*'], secret: 'whsec_mine' }, 'body'],
      [{ url, eventTypes: ['*'], collectionId: 'nope' }, 'collectionId'],
      [{ url, eventTypes: ['*'], enabled: 'yes' }, 'enabled'],
    ];
    for (const [body, path] of bad) {
      const r = await stack.admin.post('/v1/webhooks', body);
      expect({ body, status: r.status, code: r.body.error?.code }).toEqual({ body, status: 400, code: 'validation_failed' });
      expect(r.body.error.details.map((d: Json) => d.path)).toContain(path);
    }
    expect(await count()).toBe(before);
    const hook = await subscribe('/patched', ['session.ended']);
    const patched = await stack.admin.req('PATCH', `/v1/webhooks/${hook.id}`, { url: 'https://a:b@example.com/' });
    expect(patched.status).toBe(400);
    expect((await stack.admin.get(`/v1/webhooks/${hook.id}`)).body.url).toBe(receiver.url('/patched'));
    expect((await stack.admin.get(`/v1/webhooks/${hook.id}/deliveries?status=lost`)).status).toBe(400);
    expect((await stack.admin.get('/v1/webhooks/not-a-uuid')).status).toBe(400);
    expect((await stack.admin.get('/v1/webhooks/deliveries/not-a-uuid')).status).toBe(400);
    expect((await stack.admin.post('/v1/webhooks/deliveries/00000000-0000-4000-8000-000000000000/redrive')).status).toBe(404);

    // A change is audited; a rotation returns a new secret once.
    const ok = await stack.admin.req('PATCH', `/v1/webhooks/${hook.id}`, { enabled: false, description: 'paused' });
    expect(ok).toMatchObject({ status: 200, body: { enabled: false, description: 'paused' } });
    const rotated = await stack.admin.post(`/v1/webhooks/${hook.id}/secret`);
    expect(rotated.status).toBe(201);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(hook.secret);
    const actions = ((await stack.admin.get(`/v1/audit?limit=500`)).body.items as Json[])
      .filter((e) => e.stream === `webhook:${hook.id}`)
      .map((e) => e.action);
    expect(actions.sort()).toEqual(['webhook.created', 'webhook.secret_rotated', 'webhook.updated']);
    expect(JSON.stringify(await stack.ds.query(`SELECT data FROM audit_events WHERE stream = $1`, [`webhook:${hook.id}`]))).not.toContain(
      rotated.body.secret,
    );
    expect((await stack.admin.req('DELETE', `/v1/webhooks/${hook.id}`)).status).toBe(200);
    expect((await stack.admin.get(`/v1/webhooks/${hook.id}`)).status).toBe(404);
  });

  it('refuses callers without admin rights over all collections (403), and callers without a key (401)', async () => {
    const alice = stack.admin.as(world.keys.alice);
    expect((await alice.post('/v1/webhooks', { url: receiver.url('/x'), eventTypes: ['*'] })).status).toBe(403);
    expect((await alice.get('/v1/webhooks')).status).toBe(403);
    expect((await new Api(stack.admin.base).get('/v1/webhooks')).status).toBe(401);
  });
});
