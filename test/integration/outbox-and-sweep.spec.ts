import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import { DataSource } from 'typeorm';
import { loadConfig, RcflowConfig } from '../../libs/config/src';
import { createDataSource } from '../../libs/database/src';
import { JobName, OutboxRelay, QueueName, evictionProblem, redisOptionsFromUrl, writeOutbox } from '../../libs/jobs/src';
import { ReconciliationSweep } from '../../libs/workflow/src/reconciliation-sweep.service';
import { SessionTransitions } from '../../libs/sessions/src';
import { TEST_AUDIT_KEY, freshDatabase, queuePrefix } from '../support/env';
import { PrivateRedis } from '../support/redis-server';
import { requestSession, seedWorld } from '../support/fixtures';
import { waitUntil } from '../support/processes';
import { tearDown } from '../support/teardown';

/** The outbox relay and the reconciliation sweep against real PostgreSQL and a Redis we can kill. */
describe('outbox relay and reconciliation sweep', () => {
  let ds: DataSource;
  let redis: PrivateRedis;
  let queue: Queue;
  let config: RcflowConfig;
  let relay: OutboxRelay;

  let writebacks: Queue;
  const makeQueue = (name: QueueName = QueueName.Sessions) =>
    new Queue(name, {
      prefix: queuePrefix('outbox'),
      connection: { ...redisOptionsFromUrl(redis.url), enableOfflineQueue: false, maxRetriesPerRequest: null, retryStrategy: () => 100 },
    });

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    const url = await freshDatabase('outbox');
    config = loadConfig({ DATABASE_URL: url, AUDIT_HMAC_KEY: TEST_AUDIT_KEY, REDIS_URL: redis.url, SWEEP_STALE_MS: '100' });
    ds = createDataSource(config.database);
    await ds.initialize();
    queue = makeQueue();
    queue.on('error', () => undefined);
    writebacks = makeQueue(QueueName.TicketWritebacks);
    writebacks.on('error', () => undefined);
    relay = new OutboxRelay(
      ds,
      new Map([
        [QueueName.Sessions, queue],
        [QueueName.TicketWritebacks, writebacks],
      ]),
      config,
    );
  });
  // A test that fails while Redis is down must not take the next tests, or jest's exit, with it.
  afterEach(() => redis.ensureRunning());
  afterAll(() =>
    tearDown({
      redis: () => redis?.ensureRunning(),
      queue: async () => {
        try {
          await queue?.close();
        } finally {
          await queue?.disconnect();
        }
      },
      writebacks: async () => {
        try {
          await writebacks?.close();
        } finally {
          await writebacks?.disconnect();
        }
      },
      database: () => ds?.isInitialized && ds.destroy(),
      'redis-server': () => redis?.stop(),
    }),
  );

  const outboxCount = async () => Number((await ds.query('SELECT count(*)::int AS n FROM outbox'))[0].n);
  const item = (sessionId: string) => ({ queue: QueueName.Sessions as const, name: JobName.AdvanceSession as const, data: { sessionId } });

  it('moves committed rows to BullMQ and deletes them; enqueuing twice keeps one job', async () => {
    const id = '00000000-0000-4000-8000-000000000001';
    await ds.transaction((tx) => writeOutbox(tx, [item(id)]));
    await ds.transaction((tx) => writeOutbox(tx, [item(id)]));
    expect(await relay.drainBatch()).toBe(2);
    expect(await outboxCount()).toBe(0);
    const job = await queue.getJob(`advance.${id}`);
    expect(job?.data).toEqual({ sessionId: id });
    expect(await queue.getJobCounts('waiting')).toEqual({ waiting: 1 });
  });

  it('moves each row to its own queue, several queues in one batch', async () => {
    const id = '00000000-0000-4000-8000-00000000000a';
    const note = {
      queue: QueueName.TicketWritebacks as const,
      name: JobName.TicketWriteback as const,
      data: { sessionId: id, outcome: 'ended', redrive: 0 },
    };
    await ds.transaction((tx) => writeOutbox(tx, [note, item(id)]));
    expect(await relay.drainBatch()).toBe(2);
    expect((await writebacks.getJob(`writeback.${id}.ended`))?.data).toEqual(note.data);
    expect(await queue.getJob(`writeback.${id}.ended`)).toBeUndefined();
    expect((await queue.getJob(`advance.${id}`))?.data).toEqual({ sessionId: id });
    expect(await writebacks.getJob(`advance.${id}`)).toBeUndefined();
  });

  it('keeps rows while Redis is down and delivers them when it is back', async () => {
    await queue.obliterate({ force: true });
    await redis.kill();
    const id = '00000000-0000-4000-8000-000000000002';
    await ds.transaction((tx) => writeOutbox(tx, [item(id)]));
    expect(await relay.drainBatch()).toBe(0);
    const [row] = await ds.query('SELECT attempts FROM outbox');
    expect(row.attempts).toBe(1);
    await redis.startProcess();
    await ds.query(`UPDATE outbox SET available_at = now()`);
    await waitUntil(async () => (await relay.drainBatch()) === 1, 10_000, 'relay after Redis came back');
    expect(await outboxCount()).toBe(0);
    expect((await queue.getJob(`advance.${id}`))?.data).toEqual({ sessionId: id });
  });

  it('re-enqueues stale sessions whose jobs Redis lost, and leaves those with live jobs', async () => {
    const world = await seedWorld(ds);
    const lost = await requestSession(ds, world);
    const live = await requestSession(ds, await seedWorld(ds));
    await queue.obliterate({ force: true });
    await queue.add(JobName.AdvanceSession, { sessionId: live }, { jobId: `advance.${live}` });
    await ds.query(`UPDATE sessions SET state_changed_at = now() - interval '1 minute'`);
    const sweep = new ReconciliationSweep(ds, new SessionTransitions(ds, config), queue, writebacks, writebacks, config);
    const n = await sweep.sweep();
    expect(n).toBeGreaterThanOrEqual(1);
    const rows: { job_id: string }[] = await ds.query('SELECT job_id FROM outbox');
    expect(rows.map((r) => r.job_id)).toContain(`advance.${lost}`);
    expect(rows.map((r) => r.job_id)).not.toContain(`advance.${live}`);
    // A second pass while the row waits in the outbox adds nothing twice.
    await sweep.sweep();
    expect((await ds.query(`SELECT count(*)::int AS n FROM outbox WHERE job_id = $1`, [`advance.${lost}`]))[0].n).toBe(1);
    await relay.drainBatch();
    expect(await queue.getJob(`advance.${lost}`)).toBeDefined();
  });

  it('rebuilds the timer of a booked session due within two sweeps, delayed until its start; a later booking waits', async () => {
    const soon = await requestSession(ds, await seedWorld(ds));
    const later = await requestSession(ds, await seedWorld(ds));
    const at = new Date(Date.now() + 10_000);
    await ds.query(`UPDATE sessions SET state = 'scheduled', not_before = $2 WHERE id = $1`, [soon, at]);
    await ds.query(`UPDATE sessions SET state = 'scheduled', not_before = now() + interval '2 hours' WHERE id = $1`, [later]);
    await queue.obliterate({ force: true });
    const sweep = new ReconciliationSweep(ds, new SessionTransitions(ds, config), queue, writebacks, writebacks, config);
    await sweep.sweep();
    const rows = await ds.query<{ job_id: string; run_at: Date }[]>(`SELECT job_id, run_at FROM outbox WHERE job_id = ANY($1)`, [
      [`advance.${soon}`, `advance.${later}`],
    ]);
    expect(rows.map((r) => [r.job_id, new Date(r.run_at).toISOString()])).toEqual([[`advance.${soon}`, at.toISOString()]]);
    await relay.drainBatch();
    const job = await queue.getJob(`advance.${soon}`);
    expect(await job?.getState()).toBe('delayed');
    // Its timer is live again: the next sweep leaves it alone.
    await sweep.sweep();
    expect(await ds.query(`SELECT 1 FROM outbox WHERE job_id = $1`, [`advance.${soon}`])).toEqual([]);
  });

  it('re-enqueues notes owed to tickets whose jobs Redis lost, and leaves sent notes and live jobs alone', async () => {
    /** A ticket session that ended rejected a minute ago; `note`: its write-back row, if any. */
    const ticketSession = async (note?: string) => {
      const id = await requestSession(ds, await seedWorld(ds));
      await ds.query(
        `UPDATE sessions SET ticket_ref = 'T-1', ticket_integration_id = gen_random_uuid(), state = 'rejected',
                state_changed_at = now() - interval '1 minute' WHERE id = $1`,
        [id],
      );
      if (note)
        await ds.query(
          `INSERT INTO ticket_writebacks (id, integration_id, session_id, ticket_ref, outcome, state) VALUES (gen_random_uuid(), gen_random_uuid(), $1, 'T-1', 'rejected', $2)`,
          [id, note],
        );
      return id;
    };
    const [lost, sent, dead, live] = [
      await ticketSession(),
      await ticketSession('sent'),
      await ticketSession('dead'),
      await ticketSession(),
    ];
    await writebacks.obliterate({ force: true });
    await writebacks.add(
      JobName.TicketWriteback,
      { sessionId: live, outcome: 'rejected', redrive: 0 },
      { jobId: `writeback.${live}.rejected`, delay: 60_000 },
    );
    const sweep = new ReconciliationSweep(ds, new SessionTransitions(ds, config), queue, writebacks, writebacks, config);
    expect(await sweep.sweepNotes()).toBe(1);
    const owed = async () =>
      (await ds.query<{ job_id: string }[]>(`SELECT job_id FROM outbox WHERE queue = 'ticket-writebacks'`)).map((r) => r.job_id);
    // Only the lost one: not the sent note, not the dead one (an administrator re-drives it), not the one with a live job.
    expect(await owed()).toEqual([`writeback.${lost}.rejected`]);
    expect([sent, dead, live]).toHaveLength(3);
    // A second pass while the row waits in the outbox adds nothing twice.
    expect(await sweep.sweepNotes()).toBe(0);
    await relay.drainBatch();
    expect((await writebacks.getJob(`writeback.${lost}.rejected`))?.data).toEqual({ sessionId: lost, outcome: 'rejected', redrive: 0 });
  });

  it('names the problem when Redis may evict keys', async () => {
    const lru = await PrivateRedis.start('allkeys-lru');
    const client = new IORedis(lru.url);
    try {
      expect(await evictionProblem(client)).toMatch(/maxmemory-policy is "allkeys-lru".*noeviction/);
      const ok = new IORedis(redis.url);
      try {
        expect(await evictionProblem(ok)).toBeNull();
      } finally {
        ok.disconnect();
      }
    } finally {
      client.disconnect();
      await lru.stop();
    }
  });
});
