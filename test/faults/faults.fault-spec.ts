import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import { Client } from 'pg';
import { QueueName } from '../../libs/jobs/src/jobs';
import { Api } from '../support/http';
import { RcflowProcess, waitUntil } from '../support/processes';
import { allAtRest, bulkDevices, expectInvariants } from '../support/invariants';
import { OperatorWorld, Stack, seedOperatorWorld, startStack } from '../support/stack';

jest.setTimeout(180_000);

/**
 * Faults with real processes on loopback (DESIGN.md "What must hold, whatever fails"). The
 * loopback agent (in the worker) answers after a delay, so hundreds of sessions are in flight
 * when something is killed.
 */
/** Case 6 (an agent that never acknowledges, acknowledges twice or too late) runs with real WebSocket agents in test/e2e/agent-channel.e2e-spec.ts. */
describe('fault injection', () => {
  let stack: Stack;
  let world: OperatorWorld;
  let alice: Api;
  let bot: Api;
  const extraWorkers: RcflowProcess[] = [];
  /** Connections of the test's own that hold locks; ended (their locks released) in afterAll whatever happened. */
  const blockers: Client[] = [];

  beforeAll(async () => {
    stack = await startStack('faults', {
      AGENT_TRANSPORT: 'loopback',
      LOOPBACK_AGENT: JSON.stringify({ default: { latencyMs: 150 } }),
      JOB_LOCK_MS: '2000',
      JOB_ATTEMPTS: '3',
      WORKER_CONCURRENCY: '50',
      SWEEP_STALE_MS: '4000',
      SHUTDOWN_TIMEOUT_MS: '15000',
      RATE_LIMIT_PER_MINUTE: '100000',
    });
    world = await seedOperatorWorld(stack.admin);
    alice = stack.admin.as(world.keys.alice);
    bot = stack.admin.as(world.keys.bot);
  });
  afterAll(async () => {
    try {
      if (process.env.DEBUG_FAULTS) {
        for (const w of extraWorkers) process.stdout.write(`--- worker ${w.proc.pid}\n${w.output.slice(-3000)}\n`);
        process.stdout.write(`--- api\n${stack.apis[0].proc.output.slice(-3000)}\n--- main worker\n${stack.worker.output.slice(-4000)}\n`);
      }
    } finally {
      await Promise.allSettled([...blockers.splice(0).map((c) => c.end()), ...extraWorkers.map((w) => w.stop('SIGKILL'))]);
      await stack?.stop();
    }
  });

  const startWorker = async (env: Record<string, string> = {}) => {
    const w = RcflowProcess.start('worker', { ...stack.env, ...env });
    extraWorkers.push(w);
    await w.waitFor('worker running', 90_000);
    return w;
  };
  const request = async (api: Api, deviceIds: string[]) => {
    const ids: string[] = [];
    for (let i = 0; i < deviceIds.length; i += 25) {
      const batch = await Promise.all(
        deviceIds.slice(i, i + 25).map((deviceId) => api.post('/v1/sessions', { deviceId, type: 'remote-control', access: 'full' })),
      );
      for (const r of batch) {
        expect(r.status).toBe(202);
        ids.push(r.body.id);
      }
    }
    return ids;
  };
  const dbName = () => new URL(stack.env.DATABASE_URL).pathname.slice(1);
  /** A connection of the test's own, to hold locks in a transaction. */
  const blocker = async () => {
    const c = new Client({ connectionString: stack.env.DATABASE_URL, application_name: 'rcflow-test-blocker' });
    blockers.push(c);
    await c.connect();
    return c;
  };
  const release = async (c: Client) => {
    blockers.splice(blockers.indexOf(c), 1);
    await c.end(); // ends its transaction: the locks go with it
  };
  /** Backends of `app` in this test's database waiting for a lock, with what they run. */
  const waitingOnLocks = async (app: string) =>
    await stack.ds.query<{ pid: number; query: string; state: string; in_transaction: boolean }[]>(
      `SELECT pid, query, state, xact_start IS NOT NULL AS in_transaction FROM pg_stat_activity
        WHERE datname = $1 AND application_name = $2 AND wait_event_type = 'Lock'`,
      [dbName(), app],
    );
  const moving = async (ids: string[]) =>
    (
      await stack.ds.query(`SELECT count(*)::int AS n FROM sessions WHERE id = ANY($1) AND state NOT IN ('active','rejected','failed')`, [
        ids,
      ])
    )[0].n;

  it('1. SIGKILL one of two workers with hundreds of sessions in flight: all finish after restart', async () => {
    const second = await startWorker();
    const devices = await bulkDevices(stack.ds, world.ids.desks, 'KILL', 300);
    const ids = await request(alice, devices);
    await waitUntil(async () => (await moving(ids)) < 250 && (await moving(ids)) > 0, 20_000, 'work in flight');
    await stack.worker.stop('SIGKILL');
    await allAtRest(stack.ds, ids, 90_000); // the survivor takes over the dead worker's jobs once their locks lapse
    stack.worker = await startWorker();
    await second.stop('SIGTERM');
    const states = await stack.ds.query(`SELECT state, count(*)::int AS n FROM sessions WHERE id = ANY($1) GROUP BY state`, [ids]);
    expect(states).toEqual([{ state: 'active', n: 300 }]);
    await expectInvariants(stack.ds, ids);
  });

  it.each(['after-agent-ack', 'after-commit'])(
    '2. a worker killed %s: the session still finishes once, with one event per transition',
    async (point) => {
      await stack.worker.stop('SIGTERM');
      const markers = mkdtempSync(join(tmpdir(), 'rcflow-fault-'));
      const faulty = await startWorker({ RCFLOW_FAULTS: point, RCFLOW_FAULT_MARKER_DIR: markers });
      const [device] = await bulkDevices(stack.ds, world.ids.desks, `FP-${point}`, 1);
      const [id] = await request(alice, [device]);
      const code = await faulty.exited;
      expect(code).toBeNull(); // killed by SIGKILL at the fault point
      stack.worker = await startWorker({ RCFLOW_FAULTS: point, RCFLOW_FAULT_MARKER_DIR: markers });
      await allAtRest(stack.ds, [id], 30_000);
      expect((await stack.ds.query('SELECT state FROM sessions WHERE id = $1', [id]))[0].state).toBe('active');
      await expectInvariants(stack.ds, [id]);
    },
  );

  it('3. SIGTERM under load: intake answers 503 while an in-flight request finishes, the worker drains, both exit in bounded time', async () => {
    const devices = await bulkDevices(stack.ds, world.ids.desks, 'TERM', 120);
    const api = stack.apis[0];
    const accepted: string[] = [];
    const statuses: number[] = [];
    let stop = false;
    const load = (async () => {
      // Until the API is gone; the devices come round again (later requests for one are rejected, still a 202).
      for (let i = 0; !stop; i++) {
        try {
          const r = await alice.post('/v1/sessions', {
            deviceId: devices[i % (devices.length - 1)],
            type: 'remote-control',
            access: 'full',
          });
          statuses.push(r.status);
          if (r.status === 202) accepted.push(r.body.id);
        } catch {
          statuses.push(0); // connection refused once the listener closed
          break;
        }
      }
    })();
    await waitUntil(async () => accepted.length >= 20, 20_000, 'load to start');
    // Barrier: new sessions wait for this lock, so the load's next request is held inside the API,
    // which then cannot finish shutting down: the window in which intake must answer 503 stays open.
    const lock = await blocker();
    await lock.query('BEGIN');
    await lock.query('LOCK TABLE sessions IN SHARE MODE');
    let exits: Promise<[number | null, number | null]> | null = null;
    let codes: [number | null, number | null] = [null, null];
    try {
      // (pg_stat_activity shows only the first 1 kB of the intake statement: pg_locks says what it waits for.)
      await waitUntil(
        async () =>
          (
            await stack.ds.query(
              `SELECT 1 FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
                WHERE a.datname = $1 AND a.application_name = 'rcflow-api' AND NOT l.granted AND l.relation = 'sessions'::regclass`,
              [dbName()],
            )
          ).length > 0,
        20_000,
        'an intake request held by the lock',
      );
      exits = Promise.all([api.proc.stop('SIGTERM'), stack.worker.stop('SIGTERM')]);
      await api.proc.waitFor('SIGTERM: draining');
      // Reads are not held by the lock: poll with them until the API says it is shutting down.
      await waitUntil(async () => (await alice.get('/v1/sessions?limit=1')).status === 503, 20_000, 'the API to answer 503 while draining');
      const refused = await alice.post('/v1/sessions', { deviceId: devices.at(-1)!, type: 'remote-control', access: 'full' });
      statuses.push(refused.status);
      expect(refused.status).toBe(503);
      expect(refused.body.error).toMatchObject({ status: 503, code: 'shutting_down' });
    } finally {
      await release(lock);
      if (exits) codes = await exits;
      stop = true;
      await load;
      // The next generation of processes, whatever happened above: the later cases need them.
      await Promise.all([api.proc.stop('SIGKILL'), stack.worker.stop('SIGKILL')]);
      api.proc = RcflowProcess.start('api', { ...stack.env, PORT: new URL(api.api.base).port });
      await api.proc.waitFor('api listening', 90_000);
      stack.worker = await startWorker();
    }
    // 0, not 1: both finished draining within SHUTDOWN_TIMEOUT_MS, which ends the process with 1.
    expect(codes).toEqual([0, 0]);
    expect(statuses).toContain(503);
    expect(statuses.filter((s) => s !== 202 && s !== 503 && s !== 0)).toEqual([]); // the held request finished with 202 too
    expect((await stack.ds.query('SELECT count(*)::int AS n FROM sessions WHERE device_id = $1', [devices.at(-1)]))[0].n).toBe(0);
    // Everything accepted is finished by the next generation of processes.
    await allAtRest(stack.ds, accepted, 60_000);
    await expectInvariants(stack.ds, accepted);
  });

  it('4. Redis killed and restarted empty with work in flight: the sweep re-enqueues the lost work, which finishes once', async () => {
    const devices = await bulkDevices(stack.ds, world.ids.desks, 'REDIS', 150);
    // The work piles up in Redis while no worker runs, so some of it is certainly only there when Redis dies.
    await stack.worker.stop('SIGTERM');
    const ids = await request(alice, devices);
    const connection = new IORedis(stack.redis.url, { maxRetriesPerRequest: 1 });
    const queue = new Queue(QueueName.Sessions, { connection, prefix: stack.env.QUEUE_PREFIX });
    let inFlight: { active: number; waiting: number; moving: number };
    try {
      await waitUntil(
        async () => (await stack.ds.query('SELECT count(*)::int AS n FROM outbox'))[0].n === 0,
        20_000,
        'the relay to move the work to Redis',
      );
      stack.worker = await startWorker();
      inFlight = await waitUntil(
        async () => {
          const c = await queue.getJobCounts('active', 'waiting');
          return c.active > 0 && c.waiting > 0 ? { active: c.active, waiting: c.waiting, moving: 0 } : null;
        },
        20_000,
        'jobs both active and waiting',
      );
    } finally {
      await queue.close();
      connection.disconnect();
    }
    inFlight.moving = await moving(ids);
    await stack.redis.kill();
    await stack.redis.startProcess();
    expect(inFlight.active).toBeGreaterThan(0);
    expect(inFlight.waiting).toBeGreaterThan(0);
    expect(inFlight.moving).toBeGreaterThan(0);

    await allAtRest(stack.ds, ids, 90_000);
    // The jobs that were only in Redis came back through the sweep, counted on their sessions.
    const [{ requeued }] = await stack.ds.query('SELECT count(*)::int AS requeued FROM sessions WHERE id = ANY($1) AND requeues > 0', [
      ids,
    ]);
    expect(requeued).toBeGreaterThan(0);
    expect(stack.worker.output).toMatch(/re-enqueued \d+ sessions whose jobs were gone/);
    await expectInvariants(stack.ds, ids);
  });

  it('4b. Redis down when the API starts and during intake: the 202s are kept and processed later', async () => {
    await stack.redis.kill();
    const api = stack.apis[0];
    await api.proc.stop('SIGKILL');
    api.proc = RcflowProcess.start('api', { ...stack.env, PORT: new URL(api.api.base).port });
    await api.proc.waitFor('api listening', 90_000);
    expect(api.proc.output).toMatch(/does not answer; requests are kept in the outbox/);
    const devices = await bulkDevices(stack.ds, world.ids.desks, 'DOWN', 10);
    const ids = await request(alice, devices);
    expect((await stack.ds.query('SELECT count(*)::int AS n FROM outbox'))[0].n).toBeGreaterThanOrEqual(10);
    await stack.redis.startProcess();
    await allAtRest(stack.ds, ids, 90_000);
    await expectInvariants(stack.ds, ids);
  });

  it('5. PostgreSQL connection killed mid-transition: nothing half-written, every session still finishes once', async () => {
    const devices = await bulkDevices(stack.ds, world.ids.desks, 'PGKILL', 150);
    await stack.worker.stop('SIGTERM');
    const ids = await request(alice, devices);
    // Barrier: the worker's transitions of these sessions wait for the test's row locks, so a
    // backend is certainly inside a transition (its UPDATE of sessions, in a transaction) when killed.
    const lock = await blocker();
    let killed: { pid: number; query: string; in_transaction: boolean; terminated: boolean }[] = [];
    try {
      await lock.query('BEGIN');
      await lock.query('SELECT id FROM sessions WHERE id = ANY($1) FOR UPDATE', [ids]);
      stack.worker = await startWorker();
      const transitions = async () =>
        (await waitingOnLocks('rcflow-worker')).filter((b) => b.query.includes('UPDATE sessions SET state = '));
      const mid = await waitUntil(
        async () => ((await transitions()).length > 0 ? await transitions() : null),
        20_000,
        'a worker transition held by the lock',
      );
      killed = await stack.ds.query(
        `SELECT pid, query, xact_start IS NOT NULL AS in_transaction, pg_terminate_backend(pid) AS terminated
           FROM pg_stat_activity WHERE pid = ANY($1) AND application_name = 'rcflow-worker' AND wait_event_type = 'Lock'`,
        [mid.map((b) => b.pid)],
      );
      expect(killed.length).toBeGreaterThan(0);
      for (const k of killed)
        expect(k).toMatchObject({ in_transaction: true, terminated: true, query: expect.stringContaining('UPDATE sessions SET state = ') });
      await waitUntil(
        async () =>
          (await stack.ds.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1)', [killed.map((k) => k.pid)]))[0].n ===
          0,
        10_000,
        'the killed backends to be gone',
      );
      // Nothing the killed transactions wrote is visible: the sessions still stand where they were.
      expect(await moving(ids)).toBe(ids.length);
      expect((await stack.ds.query('SELECT count(*)::int AS n FROM audit_events WHERE session_id = ANY($1)', [ids]))[0].n).toBe(ids.length);
    } finally {
      await release(lock);
    }
    await allAtRest(stack.ds, ids, 120_000);
    expect(stack.worker.proc.exitCode).toBeNull(); // a dropped connection is not a reason to die
    await expectInvariants(stack.ds, ids);
  });

  it('7. 50 concurrent POSTs with one Idempotency-Key make one session; 200 parallel requests for one device leave exactly one active', async () => {
    const [device] = await bulkDevices(stack.ds, world.ids.desks, 'IDEM', 1);
    const body = { deviceId: device, viewerId: world.ids.alice, type: 'remote-control', access: 'full', ticketRef: 'INC-7' };
    const same = await Promise.all(Array.from({ length: 50 }, () => bot.post('/v1/sessions', body, { 'Idempotency-Key': 'INC-7' })));
    expect(new Set(same.map((r) => r.status))).toEqual(new Set([202]));
    expect(new Set(same.map((r) => r.body.id)).size).toBe(1);

    const [contested] = await bulkDevices(stack.ds, world.ids.desks, 'CONTEST', 1);
    const many = await Promise.all(
      Array.from({ length: 200 }, () => alice.post('/v1/sessions', { deviceId: contested, type: 'remote-control', access: 'full' })),
    );
    const ids = many.map((r) => r.body.id as string);
    await allAtRest(stack.ds, [...ids, same[0].body.id], 60_000);
    const states = await stack.ds.query(`SELECT state, count(*)::int AS n FROM sessions WHERE id = ANY($1) GROUP BY state ORDER BY state`, [
      ids,
    ]);
    expect(states).toEqual([
      { state: 'active', n: 1 },
      { state: 'rejected', n: 199 },
    ]);
    await expectInvariants(stack.ds, [...ids, same[0].body.id]);
  });

  it('8. a poison request fails after its attempts while others flow', async () => {
    // Settings that slipped past validation (written straight into the database) make every attempt throw.
    const [poisonCollection] = await stack.ds.query(`INSERT INTO collections (name) VALUES ('Poison') RETURNING id`);
    const [bad] = await stack.ds.query(
      `INSERT INTO client_settings (name, priority, remote_tools) VALUES ('Broken', 1, '{"enabled": true, "bogus": 1}') RETURNING id`,
    );
    await stack.ds.query('INSERT INTO settings_deployments (settings_id, collection_id) VALUES ($1, $2)', [bad.id, poisonCollection.id]);
    await stack.ds.query(`UPDATE role_assignments SET collection_ids = collection_ids || $1::uuid WHERE principal_id = $2`, [
      poisonCollection.id,
      world.ids.helpdesk,
    ]);
    const [poisonDevice] = await bulkDevices(stack.ds, poisonCollection.id, 'POISON', 1);
    const healthy = await bulkDevices(stack.ds, world.ids.desks, 'HEALTHY', 40);
    // The API caches a caller's grants for a while: until it reads alice's new grant, Poison is out
    // of her scope, and a request for its device is refused (404) and stores nothing.
    const poison = await waitUntil(
      async () => {
        const r = await alice.post('/v1/sessions', { deviceId: poisonDevice, type: 'remote-control', access: 'full' });
        if (r.status === 202) return r.body.id as string;
        if (r.status !== 404) throw new Error(`unexpected ${r.status} ${JSON.stringify(r.body)}`);
        return null;
      },
      30_000,
      "the API to see alice's grant over Poison",
    );
    expect((await stack.ds.query('SELECT count(*)::int AS n FROM sessions WHERE device_id = $1', [poisonDevice]))[0].n).toBe(1);
    const others = await request(alice, healthy);
    await allAtRest(stack.ds, [poison, ...others], 60_000);
    const [p] = await stack.ds.query('SELECT state, failure_cause FROM sessions WHERE id = $1', [poison]);
    expect(p).toEqual({ state: 'failed', failure_cause: 'worker_error' });
    const states = await stack.ds.query(`SELECT DISTINCT state FROM sessions WHERE id = ANY($1)`, [others]);
    expect(states).toEqual([{ state: 'active' }]);
    await expectInvariants(stack.ds, [poison, ...others]);
  });
});
