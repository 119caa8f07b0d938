import { Queue } from 'bullmq';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { appendAudit, type AuditEntry } from '../../libs/audit/src';
import { loadConfig, RcflowConfig } from '../../libs/config/src';
import { createDataSource } from '../../libs/database/src';
import { JobName, OutboxRelay, QueueName, redisOptionsFromUrl } from '../../libs/jobs/src';
import { WebhookDispatcher } from '../../libs/workflow/src/webhooks/webhook-dispatcher.service';
import { TEST_AUDIT_KEY, freshDatabase, queuePrefix } from '../support/env';
import { PrivateRedis } from '../support/redis-server';
import { seedWorld } from '../support/fixtures';
import { tearDown } from '../support/teardown';

/**
 * The webhook dispatcher on real PostgreSQL: audit events fan out to the subscriptions they match,
 * one delivery and one outbox row each, in the transaction that advances the cursor — exactly once
 * with two dispatchers at work, and after a dispatch that dies between its steps.
 */
describe('webhook dispatcher (PostgreSQL)', () => {
  let url: string;
  let config: RcflowConfig;
  let ds: DataSource;
  let ds2: DataSource;
  let world: Awaited<ReturnType<typeof seedWorld>>;

  // The dispatcher enqueues nothing itself (the relay moves outbox rows to BullMQ after commit, tested
  // in outbox-and-sweep.spec.ts) and touches its queue only in the sweep, which these tests do not
  // run: the outbox rows stay where the tests count them, and no Redis is needed.
  class HeldRelay extends OutboxRelay {
    override kick(): void {
      /* held: the tests count the rows */
    }
  }
  const noQueue = null as unknown as Queue;
  const dispatcher = (d: DataSource) => new WebhookDispatcher(d, new HeldRelay(d, new Map(), config), noQueue, config);

  beforeAll(async () => {
    url = await freshDatabase('webhook_dispatch');
    config = loadConfig({ DATABASE_URL: url, AUDIT_HMAC_KEY: TEST_AUDIT_KEY });
    ds = createDataSource({ ...config.database, poolSize: 4 });
    ds2 = createDataSource({ ...config.database, poolSize: 4 });
    await Promise.all([ds.initialize(), ds2.initialize()]);
    world = await seedWorld(ds);
  });
  afterAll(() =>
    tearDown({
      ds: () => ds?.isInitialized && ds.destroy(),
      ds2: () => ds2?.isInitialized && ds2.destroy(),
    }),
  );

  /** Starts each test from a clean slate: no subscriptions or deliveries, the cursor at the end of the trail. */
  beforeEach(async () => {
    await ds.query('DELETE FROM webhook_deliveries; DELETE FROM webhook_subscriptions; DELETE FROM outbox; DELETE FROM webhook_cursor');
    expect(await dispatcher(ds).dispatchOnce()).toMatchObject({ events: 0, skipped: false });
  });

  const subscribe = async (eventTypes: string[], fields: { collectionId?: string; enabled?: boolean } = {}) => {
    const [row] = await ds.query<{ id: string }[]>(
      `INSERT INTO webhook_subscriptions (url, event_types, collection_id, enabled, secret_sealed)
       VALUES ('https://example.com/hook', $1, $2, $3, 'sealed') RETURNING id`,
      [eventTypes, fields.collectionId ?? null, fields.enabled ?? true],
    );
    return row.id;
  };
  const event = (action: string, deviceId: string | null = null): AuditEntry => ({
    stream: `test:${randomUUID()}`,
    actorId: null,
    actorKind: 'system',
    action,
    outcome: 'succeeded',
    deviceId,
  });
  const write = async (entries: AuditEntry[]) => {
    await ds.transaction((tx) => appendAudit(tx, TEST_AUDIT_KEY, entries));
    const ids = await ds.query<{ id: string; action: string }[]>(`SELECT id::text AS id, action FROM audit_events WHERE stream = ANY($1)`, [
      entries.map((e) => e.stream),
    ]);
    return ids;
  };
  const deliveries = () =>
    ds.query<{ id: string; subscription_id: string; event_id: string; event_type: string; body: string }[]>(
      `SELECT id, subscription_id, event_id::text AS event_id, event_type, body FROM webhook_deliveries ORDER BY event_id, subscription_id`,
    );
  const outbox = () =>
    ds.query<{ queue: string; job_id: string; payload: { deliveryId: string; cycle: number } }[]>(
      `SELECT queue, job_id, payload FROM outbox`,
    );

  it('writes one delivery and one outbox row per matching enabled subscription, and moves the cursor past the events', async () => {
    const sessions = await subscribe(['session.*']);
    const inCollection = await subscribe(['*'], { collectionId: world.collectionId });
    await subscribe(['*'], { enabled: false });
    const other = await seedWorld(ds);
    const events = await write([
      event('session.active', world.deviceId),
      event('session.ended', other.deviceId),
      event('collection.created'),
      event('device.updated', world.deviceId),
    ]);
    const id = (action: string) => events.find((e) => e.action === action)!.id;

    const round = await dispatcher(ds).dispatchOnce();
    expect(round).toMatchObject({ events: 4, deliveries: 4, skipped: false });
    const written = await deliveries();
    expect(written.map((d) => [d.event_id, d.subscription_id]).sort()).toEqual(
      [
        [id('session.active'), sessions],
        [id('session.active'), inCollection],
        [id('session.ended'), sessions],
        [id('device.updated'), inCollection],
      ].sort(),
    );
    const body = JSON.parse(written.find((d) => d.event_id === id('session.active'))!.body);
    expect(body).toMatchObject({
      type: 'session.active',
      data: { id: id('session.active'), action: 'session.active', deviceId: world.deviceId },
    });
    expect(body.timestamp).toBe(body.data.occurredAt);
    expect((await outbox()).map((o) => [o.queue, o.job_id, o.payload]).sort()).toEqual(
      written.map((d) => ['webhooks', `webhook.${d.id}.0`, { deliveryId: d.id, cycle: 0 }]).sort(),
    );
    // Read to the end: a second round finds nothing new.
    expect(await dispatcher(ds).dispatchOnce()).toMatchObject({ events: 0, deliveries: 0, skipped: false });
    expect(await deliveries()).toHaveLength(4);
  });

  it('lets one dispatcher at a time hold the cursor: the other skips the round', async () => {
    await subscribe(['session.*']);
    await write([event('session.active', world.deviceId)]);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let reading!: () => void;
    const isReading = new Promise<void>((r) => (reading = r));
    const first = dispatcher(ds).dispatchOnce(async (step) => {
      if (step !== 'read') return;
      reading();
      await held;
    });
    await isReading;
    expect(await dispatcher(ds2).dispatchOnce()).toMatchObject({ events: 0, deliveries: 0, skipped: true });
    release();
    expect(await first).toMatchObject({ events: 1, deliveries: 1, skipped: false });
    expect(await deliveries()).toHaveLength(1);
  });

  it('fans out exactly once with two dispatchers racing over many pages of events', async () => {
    const a = await subscribe(['session.*']);
    const b = await subscribe(['*']);
    // 1,300 events in 13 transactions: more than two pages of 500.
    const written: string[] = [];
    for (let t = 0; t < 13; t++) {
      const rows = await write(Array.from({ length: 100 }, (_, i) => event(i % 2 ? 'session.active' : 'device.updated', world.deviceId)));
      written.push(...rows.map((r) => r.id));
    }
    // Three dispatchers (as in three worker processes) on two pools, each running its rounds to the end at once.
    const racers = [dispatcher(ds), dispatcher(ds2), dispatcher(ds)];
    for (let round = 0; round < 10; round++) await Promise.all(racers.map((r) => r.dispatchAll()));
    const rows = await deliveries();
    const expected = written.length + written.length / 2;
    expect(rows).toHaveLength(expected);
    expect(new Set(rows.map((r) => `${r.subscription_id}/${r.event_id}`)).size).toBe(expected);
    expect(rows.filter((r) => r.subscription_id === a).every((r) => r.event_type === 'session.active')).toBe(true);
    expect(rows.filter((r) => r.subscription_id === b)).toHaveLength(written.length);
    const jobs = await outbox();
    expect(jobs).toHaveLength(expected);
    expect(new Set(jobs.map((j) => j.payload.deliveryId))).toEqual(new Set(rows.map((r) => r.id)));
  });

  it('tells an event whose transaction commits after a later one: the tail holds at the gap, then hands out both once', async () => {
    await subscribe(['session.*']);
    const d = dispatcher(ds);
    // A writer that drew its id and has not committed yet, while a later id commits.
    const slow = ds2.createQueryRunner();
    await slow.connect();
    await slow.startTransaction();
    const late = event('session.active', world.deviceId);
    await appendAudit(slow.manager, TEST_AUDIT_KEY, [late]);
    const [early] = await write([event('session.ended', world.deviceId)]);
    await d.dispatchAll();
    expect(await deliveries()).toEqual([]);
    await slow.commitTransaction();
    await slow.release();
    const [{ id: lateId }] = await ds.query(`SELECT id::text AS id FROM audit_events WHERE stream = $1`, [late.stream]);
    expect(BigInt(lateId)).toBeLessThan(BigInt(early.id));
    // The tail waits until no writer older than the gap is running; a few rounds at most.
    for (let i = 0; i < 20 && (await deliveries()).length < 2; i++) await d.dispatchAll();
    expect((await deliveries()).map((r) => r.event_id)).toEqual([lateId, early.id]);
    await d.dispatchAll();
    expect(await deliveries()).toHaveLength(2);
  });

  it('writes nothing when a dispatch dies between its steps, and everything exactly once on the next run', async () => {
    await subscribe(['session.*']);
    const [{ position: before }] = await ds.query(`SELECT position FROM webhook_cursor`);
    await write([event('session.active', world.deviceId), event('session.ended', world.deviceId)]);

    // An error after the deliveries were written, before the cursor moved.
    await expect(
      dispatcher(ds).dispatchOnce((step) => {
        if (step === 'written') throw new Error('crash after the deliveries');
      }),
    ).rejects.toThrow('crash after the deliveries');
    expect(await deliveries()).toEqual([]);
    expect(await outbox()).toEqual([]);
    expect((await ds.query(`SELECT position FROM webhook_cursor`))[0].position).toEqual(before);

    // The connection cut mid-transaction, as a killed process or a lost network leaves it.
    await expect(
      dispatcher(ds).dispatchOnce(async (step, tx) => {
        if (step !== 'written') return;
        const [{ pid }] = await tx.query(`SELECT pg_backend_pid() AS pid`);
        await ds2.query(`SELECT pg_terminate_backend($1)`, [pid]);
      }),
    ).rejects.toThrow();
    expect(await deliveries()).toEqual([]);
    expect(await outbox()).toEqual([]);

    expect(await dispatcher(ds).dispatchOnce()).toMatchObject({ events: 2, deliveries: 2, skipped: false });
    expect(await dispatcher(ds).dispatchOnce()).toMatchObject({ events: 0, deliveries: 0, skipped: false });
    expect(await deliveries()).toHaveLength(2);
    expect(await outbox()).toHaveLength(2);
  });
});

/** Deliveries whose job Redis lost are given a job again; one whose job is alive is left alone. */
describe('webhook sweep (PostgreSQL, a private Redis)', () => {
  let ds: DataSource;
  let redis: PrivateRedis;
  let queue: Queue;
  let sweeper: WebhookDispatcher;

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    const url = await freshDatabase('webhook_sweep');
    const config = loadConfig({ DATABASE_URL: url, AUDIT_HMAC_KEY: TEST_AUDIT_KEY, REDIS_URL: redis.url, SWEEP_STALE_MS: '100' });
    ds = createDataSource(config.database);
    await ds.initialize();
    queue = new Queue(QueueName.Webhooks, {
      prefix: queuePrefix('webhook_sweep'),
      connection: { ...redisOptionsFromUrl(redis.url), enableOfflineQueue: false, maxRetriesPerRequest: null, retryStrategy: () => 100 },
    });
    class HeldRelay extends OutboxRelay {
      override kick(): void {
        /* held: the test reads the outbox */
      }
    }
    sweeper = new WebhookDispatcher(ds, new HeldRelay(ds, new Map(), config), queue, config);
  });
  afterAll(() =>
    tearDown({
      queue: () => queue?.close(),
      database: () => ds?.isInitialized && ds.destroy(),
      redis: () => redis?.stop(),
    }),
  );

  it('re-enqueues a stale pending delivery without a job, not one with a live job, a fresh one or a delivered one', async () => {
    const [sub] = await ds.query<{ id: string }[]>(
      `INSERT INTO webhook_subscriptions (url, event_types, secret_sealed) VALUES ('https://example.com/h', '{*}', 'sealed') RETURNING id`,
    );
    const insert = async (state: string, age: string, cycle = 0) => {
      const [d] = await ds.query<{ id: string }[]>(
        `INSERT INTO webhook_deliveries (id, subscription_id, event_type, body, state, cycle, created_at)
         VALUES (gen_random_uuid(), $1, 'x.y', '{}', $2, $3, now() - $4::interval) RETURNING id`,
        [sub.id, state, cycle, age],
      );
      return d.id;
    };
    const lost = await insert('pending', '1 minute', 2);
    const alive = await insert('pending', '1 minute');
    await insert('pending', '0 seconds');
    await insert('delivered', '1 minute');
    await queue.add(JobName.WebhookDelivery, { deliveryId: alive, cycle: 0 }, { jobId: `webhook.${alive}.0`, delay: 60_000 });

    expect(await sweeper.sweep()).toBe(1);
    const rows = await ds.query<{ job_id: string; payload: unknown }[]>(`SELECT job_id, payload FROM outbox`);
    expect(rows).toEqual([{ job_id: `webhook.${lost}.2`, payload: { deliveryId: lost, cycle: 2 } }]);
    // Its outbox row waits for the relay: a second sweep does not add another.
    expect(await sweeper.sweep()).toBe(0);
  });

  it('deletes deliveries over for longer than WEBHOOK_RETENTION_DAYS with their attempts, and nothing pending or recent', async () => {
    const [sub] = await ds.query<{ id: string }[]>(
      `INSERT INTO webhook_subscriptions (url, event_types, secret_sealed) VALUES ('https://example.com/h', '{*}', 'sealed') RETURNING id`,
    );
    const insert = async (state: string, age: string) => {
      const [d] = await ds.query<{ id: string }[]>(
        `INSERT INTO webhook_deliveries (id, subscription_id, event_type, body, state, created_at, next_attempt_at)
         VALUES (gen_random_uuid(), $1, 'x.y', '{}', $2, now() - $3::interval, now() + interval '1 hour') RETURNING id`,
        [sub.id, state, age],
      );
      await ds.query(`INSERT INTO webhook_delivery_attempts (delivery_id, cycle, attempt, at, duration_ms) VALUES ($1, 0, 1, now(), 5)`, [
        d.id,
      ]);
      return d.id;
    };
    const old = [await insert('delivered', '31 days'), await insert('dead', '40 days')];
    const kept = [await insert('pending', '31 days'), await insert('delivered', '29 days')];
    expect(await sweeper.prune()).toBe(2);
    const left = await ds.query<{ id: string }[]>(`SELECT id FROM webhook_deliveries WHERE subscription_id = $1`, [sub.id]);
    expect(left.map((r) => r.id).sort()).toEqual([...kept].sort());
    const attempts = await ds.query<{ delivery_id: string }[]>(`SELECT delivery_id FROM webhook_delivery_attempts`);
    expect(attempts.map((a) => a.delivery_id).filter((id) => old.includes(id))).toEqual([]);
    expect(attempts.map((a) => a.delivery_id).filter((id) => kept.includes(id))).toHaveLength(2);
  });
});
