import { Queue } from 'bullmq';
import { DataSource } from 'typeorm';
import { loadConfig, RcflowConfig } from '../../libs/config/src';
import { createDataSource } from '../../libs/database/src';
import { verifyAudit } from '../../libs/audit/src';
import { QueueName, redisOptionsFromUrl } from '../../libs/jobs/src';
import { SessionTransitions } from '../../libs/sessions/src';
import { ReconciliationSweep } from '../../libs/workflow/src/reconciliation-sweep.service';
import { SHARED_REDIS_URL, TEST_AUDIT_KEY, freshDatabase, queuePrefix } from '../support/env';
import { requestSession, seedWorld } from '../support/fixtures';

/**
 * The reconciliation sweep's two outcomes for a session whose job is gone — re-enqueue, or give up
 * after five re-enqueues without progress — and several sweepers (one per worker) at once.
 */
describe('reconciliation sweep', () => {
  let config: RcflowConfig;
  let queue: Queue;
  /** One DataSource per sweeper, as each worker process has its own pool. */
  const pools: DataSource[] = [];
  let ds: DataSource;

  beforeAll(async () => {
    const url = await freshDatabase('sweep');
    config = loadConfig({ DATABASE_URL: url, AUDIT_HMAC_KEY: TEST_AUDIT_KEY, REDIS_URL: SHARED_REDIS_URL, SWEEP_STALE_MS: '100' });
    for (let i = 0; i < 3; i++) {
      const pool = createDataSource(config.database);
      await pool.initialize();
      pools.push(pool);
    }
    ds = pools[0]!;
    queue = new Queue(QueueName.Sessions, {
      prefix: queuePrefix('sweep'),
      connection: { ...redisOptionsFromUrl(SHARED_REDIS_URL), maxRetriesPerRequest: null, retryStrategy: () => 100 },
    });
  });
  afterAll(async () => {
    await queue?.obliterate({ force: true }).catch(() => undefined);
    await queue?.close();
    await Promise.all(pools.map((p) => p.destroy()));
  });

  // These sweepers only sweep sessions (sweep()); the notes' queue is not read.
  const sweeper = (pool: DataSource) => new ReconciliationSweep(pool, new SessionTransitions(pool, config), queue, queue, queue, config);
  const lostSessions = async (n: number, requeues: number) => {
    const ids = await Promise.all(Array.from({ length: n }, async () => requestSession(ds, await seedWorld(ds))));
    await ds.query(`UPDATE sessions SET requeues = $2, state_changed_at = now() - interval '1 minute' WHERE id = ANY($1)`, [ids, requeues]);
    return ids;
  };
  const rows = (ids: string[]) =>
    ds.query(
      `SELECT s.id, s.state, s.requeues, s.failure_cause,
              (SELECT count(*)::int FROM outbox o WHERE o.job_id = 'advance.' || s.id) AS outbox,
              (SELECT count(*)::int FROM audit_events e WHERE e.stream = 'session:' || s.id AND e.outcome = 'failed') AS failed_events
         FROM sessions s WHERE s.id = ANY($1) ORDER BY s.id`,
      [ids],
    );

  it('gives up on a session re-enqueued five times: failed, cause poison, audited once, no job again', async () => {
    const [poison] = await lostSessions(1, 5);
    const [retry] = await lostSessions(1, 4);
    await sweeper(ds).sweep();
    const byId = new Map((await rows([poison, retry])).map((r: { id: string }) => [r.id, r]));
    expect(byId.get(poison)).toEqual({ id: poison, state: 'failed', requeues: 5, failure_cause: 'poison', outbox: 0, failed_events: 1 });
    expect(byId.get(retry)).toEqual({ id: retry, state: 'requested', requeues: 5, failure_cause: null, outbox: 1, failed_events: 0 });
    const [event] = await ds.query(`SELECT reason, data FROM audit_events WHERE stream = $1 AND outcome = 'failed'`, [`session:${poison}`]);
    expect(event).toMatchObject({ reason: 'no progress after 5 re-enqueues', data: { cause: 'poison', from: 'requested', to: 'failed' } });
    expect((await verifyAudit(ds, TEST_AUDIT_KEY)).problems).toEqual([]);
  });

  it('with several sweepers at once, re-enqueues each lost session once and fails each poison session once', async () => {
    await ds.query('DELETE FROM outbox');
    const lost = await lostSessions(12, 0);
    const poison = await lostSessions(6, 5);
    const counts = await Promise.all(pools.map((pool) => sweeper(pool).sweep()));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(lost.length);
    expect((await rows(lost)).map((r: { state: string; requeues: number; outbox: number }) => [r.state, r.requeues, r.outbox])).toEqual(
      lost.map(() => ['requested', 1, 1]),
    );
    expect((await rows(poison)).map((r: { state: string; failed_events: number }) => [r.state, r.failed_events])).toEqual(
      poison.map(() => ['failed', 1]),
    );
    expect((await verifyAudit(ds, TEST_AUDIT_KEY)).problems).toEqual([]);
  });
});
