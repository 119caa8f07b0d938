import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DataSource } from 'typeorm';
import { loadConfig, RcflowConfig } from '../../libs/config/src';
import { createDataSource } from '../../libs/database/src';
import { SecretBox } from '../../libs/tickets/src';
import { newWebhookSecret, verifyWebhook } from '../../libs/webhooks/src';
import { WebhookDeliveryHandler } from '../../libs/workflow/src/webhooks/webhook-delivery.handler';
import { TEST_AUDIT_KEY, freshDatabase } from '../support/env';
import { tearDown } from '../support/teardown';

/**
 * One webhook delivery attempt against real PostgreSQL and a real HTTP receiver: signed as the
 * spec says, logged, retried with backoff to dead, never sent twice by two runs of its job, and no
 * redirect followed.
 */
describe('webhook delivery handler (PostgreSQL, a local receiver)', () => {
  let ds: DataSource;
  let config: RcflowConfig;
  let handler: WebhookDeliveryHandler;
  let server: Server;
  let base: string;
  const got: { path: string; headers: IncomingHttpHeaders; raw: string }[] = [];
  /** Per path: [status, delay ms, extra headers]. */
  const plans = new Map<string, [number, number, Record<string, string>]>();

  beforeAll(async () => {
    const url = await freshDatabase('webhook_delivery');
    config = loadConfig({
      DATABASE_URL: url,
      AUDIT_HMAC_KEY: TEST_AUDIT_KEY,
      WEBHOOK_MAX_ATTEMPTS: '3',
      WEBHOOK_BACKOFF_MS: '1000',
      WEBHOOK_TIMEOUT_MS: '1000',
    });
    ds = createDataSource({ ...config.database, poolSize: 4 });
    await ds.initialize();
    handler = new WebhookDeliveryHandler(ds, config);
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '/';
        got.push({ path, headers: req.headers, raw: Buffer.concat(chunks).toString('utf8') });
        const [status, delay, headers] = plans.get(path) ?? [200, 0, {}];
        setTimeout(() => res.writeHead(status, headers).end('x'.repeat(5000)), delay);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() =>
    tearDown({
      server: () => new Promise<void>((resolve) => server?.close(() => resolve())),
      database: () => ds?.isInitialized && ds.destroy(),
    }),
  );

  const delivery = async (path: string, enabled = true) => {
    const subscriptionId = randomUUID();
    const secret = newWebhookSecret();
    await ds.query(`INSERT INTO webhook_subscriptions (id, url, event_types, enabled, secret_sealed) VALUES ($1, $2, '{*}', $3, $4)`, [
      subscriptionId,
      `${base}${path}`,
      enabled,
      new SecretBox(config.webhooks.secretsKey).seal(secret, subscriptionId),
    ]);
    const id = randomUUID();
    const body = JSON.stringify({ type: 'session.active', timestamp: new Date().toISOString(), data: { id: '1' } });
    await ds.query(`INSERT INTO webhook_deliveries (id, subscription_id, event_type, body) VALUES ($1, $2, 'session.active', $3)`, [
      id,
      subscriptionId,
      body,
    ]);
    return { id, secret, body };
  };
  const row = async (id: string) =>
    (await ds.query(`SELECT state, attempts, last_status, last_error, next_attempt_at FROM webhook_deliveries WHERE id = $1`, [id]))[0];
  const attempts = (id: string) =>
    ds.query(
      `SELECT cycle, attempt, status_code, error, response_excerpt, duration_ms FROM webhook_delivery_attempts WHERE delivery_id = $1 ORDER BY id`,
      [id],
    );
  const at = (path: string) => got.filter((g) => g.path === path);

  it('POSTs the body signed per Standard Webhooks, and records it delivered with its attempt', async () => {
    const d = await delivery('/ok');
    expect(await handler.handle(d.id, 0)).toBeNull();
    const [sent] = at('/ok');
    expect(sent.raw).toBe(d.body);
    expect(sent.headers['webhook-id']).toBe(d.id);
    expect(verifyWebhook(d.secret, sent.headers, sent.raw)).toEqual({ ok: true });
    expect(await row(d.id)).toMatchObject({ state: 'delivered', attempts: 1, last_status: 200, last_error: null });
    const [a] = await attempts(d.id);
    expect(a).toMatchObject({ cycle: 0, attempt: 1, status_code: 200, error: null });
    // 5,000 characters answered, 256 kept.
    expect(a.response_excerpt).toBe('x'.repeat(256));
  });

  it('runs twice and sends once: a second run at the same time waits for the lease, a later one finds it delivered', async () => {
    plans.set('/twice', [200, 150, {}]);
    const d = await delivery('/twice');
    const [first, second] = await Promise.all([handler.handle(d.id, 0), handler.handle(d.id, 0)]);
    expect([first, second].filter((r) => r === null)).toHaveLength(1);
    expect([first, second].find((r) => r !== null)).toEqual({ retryInMs: expect.any(Number) });
    expect(await handler.handle(d.id, 0)).toBeNull();
    // A job of an older cycle (re-driven since) does nothing either.
    expect(await handler.handle(d.id, 7)).toBeNull();
    expect(at('/twice')).toHaveLength(1);
    expect(await attempts(d.id)).toHaveLength(1);
  });

  it('does not follow a redirect, retries after a timeout, and is dead after WEBHOOK_MAX_ATTEMPTS', async () => {
    plans.set('/moved', [302, 0, { location: `${base}/elsewhere` }]);
    const d = await delivery('/moved');
    const retry = await handler.handle(d.id, 0, () => 0);
    // Backoff: the first retry after half of WEBHOOK_BACKOFF_MS at the least (equal jitter).
    expect(retry).toEqual({ retryInMs: 500 });
    expect(at('/elsewhere')).toEqual([]);
    expect(await row(d.id)).toMatchObject({ state: 'pending', attempts: 1, last_status: 302 });
    expect((await row(d.id)).next_attempt_at).not.toBeNull();

    plans.set('/moved', [200, 3000, {}]);
    expect(await handler.handle(d.id, 0, () => 0)).toEqual({ retryInMs: 1000 });
    plans.set('/moved', [500, 0, {}]);
    expect(await handler.handle(d.id, 0)).toBeNull();
    expect(await row(d.id)).toMatchObject({ state: 'dead', attempts: 3, last_status: 500 });
    expect((await row(d.id)).last_error).toMatch(/^gave up after 3 attempts: answered 500/);
    expect((await attempts(d.id)).map((a: { status_code: number | null; error: string }) => [a.status_code, a.error])).toEqual([
      [302, 'answered 302 (redirects are not followed)'],
      [null, 'no answer within 1000 ms'],
      [500, 'answered 500'],
    ]);
    expect(await handler.handle(d.id, 0)).toBeNull();
    expect(await attempts(d.id)).toHaveLength(3);
  });

  it('fails a delivery whose subscription is disabled, without a request', async () => {
    const d = await delivery('/disabled', false);
    expect(await handler.handle(d.id, 0)).toBeNull();
    expect(await row(d.id)).toMatchObject({ state: 'failed', last_error: 'the subscription is disabled' });
    expect(at('/disabled')).toEqual([]);
  });
});
