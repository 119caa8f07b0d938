import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
    if (process.env.DEBUG_FAULTS) {
      for (const w of extraWorkers) process.stdout.write(`--- worker ${w.proc.pid}\n${w.output.slice(-3000)}\n`);
      process.stdout.write(`--- api\n${stack.apis[0].proc.output.slice(-3000)}\n--- main worker\n${stack.worker.output.slice(-4000)}\n`);
    }
    await Promise.all(extraWorkers.map((w) => w.stop('SIGKILL')));
    await stack?.stop();
  });

  const startWorker = async (env: Record<string, string> = {}) => {
    const w = RcflowProcess.start('worker', { ...stack.env, ...env });
    extraWorkers.push(w);
    await w.waitFor('worker running');
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
  const moving = async (ids: string[]) =>
    (await stack.ds.query(`SELECT count(*)::int AS n FROM sessions WHERE id = ANY($1) AND state NOT IN ('active','rejected','failed')`, [ids]))[0].n;

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

  it.each(['after-agent-ack', 'after-commit'])('2. a worker killed %s: the session still finishes once, with one event per transition', async (point) => {
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
  });

  it('3. SIGTERM under load: intake answers 503, the worker drains, both exit in bounded time', async () => {
    const devices = await bulkDevices(stack.ds, world.ids.desks, 'TERM', 120);
    const api = stack.apis[0];
    const accepted: string[] = [];
    const statuses: number[] = [];
    let stop = false;
    const load = (async () => {
      for (const deviceId of devices) {
        if (stop) break;
        try {
          const r = await alice.post('/v1/sessions', { deviceId, type: 'remote-control', access: 'full' });
          statuses.push(r.status);
          if (r.status === 202) accepted.push(r.body.id);
        } catch {
          statuses.push(0); // connection refused once the listener closed
        }
      }
    })();
    await waitUntil(async () => accepted.length >= 20, 20_000, 'load to start');
    const t0 = Date.now();
    const [apiCode, workerCode] = await Promise.all([api.proc.stop('SIGTERM'), stack.worker.stop('SIGTERM')]);
    const took = Date.now() - t0;
    stop = true;
    await load;
    expect(apiCode).toBe(0);
    expect(workerCode).toBe(0);
    expect(took).toBeLessThan(15_000);
    expect(statuses.every((s) => s === 202 || s === 503 || s === 0)).toBe(true);
    // Everything accepted is finished by the next generation of processes.
    api.proc = RcflowProcess.start('api', { ...stack.env, PORT: new URL(api.api.base).port });
    await api.proc.waitFor('api listening');
    stack.worker = await startWorker();
    await allAtRest(stack.ds, accepted, 60_000);
    await expectInvariants(stack.ds, accepted);
  });

  it('4. Redis killed and restarted empty mid-flight: the sweep rebuilds the lost work without duplicates', async () => {
    const devices = await bulkDevices(stack.ds, world.ids.desks, 'REDIS', 150);
    const ids = await request(alice, devices);
    await stack.redis.kill();
    await new Promise((r) => setTimeout(r, 500));
    await stack.redis.startProcess();
    await allAtRest(stack.ds, ids, 90_000);
    await expectInvariants(stack.ds, ids);
  });

  it('4b. Redis down when the API starts and during intake: the 202s are kept and processed later', async () => {
    await stack.redis.kill();
    const api = stack.apis[0];
    await api.proc.stop('SIGKILL');
    api.proc = RcflowProcess.start('api', { ...stack.env, PORT: new URL(api.api.base).port });
    await api.proc.waitFor('api listening');
    expect(api.proc.output).toMatch(/does not answer; requests are kept in the outbox/);
    const devices = await bulkDevices(stack.ds, world.ids.desks, 'DOWN', 10);
    const ids = await request(alice, devices);
    expect((await stack.ds.query('SELECT count(*)::int AS n FROM outbox'))[0].n).toBeGreaterThanOrEqual(10);
    await stack.redis.startProcess();
    await allAtRest(stack.ds, ids, 90_000);
    await expectInvariants(stack.ds, ids);
  });

  it('5. PostgreSQL connections killed mid-transition: nothing half-written, the jobs retry', async () => {
    const devices = await bulkDevices(stack.ds, world.ids.desks, 'PGKILL', 150);
    const ids = await request(alice, devices);
    const dbName = new URL(stack.env.DATABASE_URL).pathname.slice(1);
    let killed = 0;
    for (let i = 0; i < 10; i++) {
      const rows = await stack.ds.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'rcflow-worker'`,
        [dbName],
      );
      killed += rows.length;
      await new Promise((r) => setTimeout(r, 150));
    }
    expect(killed).toBeGreaterThan(0);
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
    const many = await Promise.all(Array.from({ length: 200 }, () => alice.post('/v1/sessions', { deviceId: contested, type: 'remote-control', access: 'full' })));
    const ids = many.map((r) => r.body.id as string);
    await allAtRest(stack.ds, [...ids, same[0].body.id], 60_000);
    const states = await stack.ds.query(`SELECT state, count(*)::int AS n FROM sessions WHERE id = ANY($1) GROUP BY state ORDER BY state`, [ids]);
    expect(states).toEqual([{ state: 'active', n: 1 }, { state: 'rejected', n: 199 }]);
    await expectInvariants(stack.ds, [...ids, same[0].body.id]);
  });

  it('8. a poison request fails after its attempts while others flow', async () => {
    // Settings that slipped past validation (written straight into the database) make every attempt throw.
    const [poisonCollection] = await stack.ds.query(`INSERT INTO collections (name) VALUES ('Poison') RETURNING id`);
    const [bad] = await stack.ds.query(
      `INSERT INTO client_settings (name, priority, remote_tools) VALUES ('Broken', 1, '{"enabled": true, "bogus": 1}') RETURNING id`,
    );
    await stack.ds.query('INSERT INTO settings_deployments (settings_id, collection_id) VALUES ($1, $2)', [bad.id, poisonCollection.id]);
    await stack.ds.query(`UPDATE role_assignments SET collection_ids = collection_ids || $1::uuid WHERE principal_id = $2`, [poisonCollection.id, world.ids.helpdesk]);
    const [poisonDevice] = await bulkDevices(stack.ds, poisonCollection.id, 'POISON', 1);
    const healthy = await bulkDevices(stack.ds, world.ids.desks, 'HEALTHY', 40);
    await new Promise((r) => setTimeout(r, 5500)); // the API caches a caller's grants for up to 5 s
    const [poison] = await request(alice, [poisonDevice]);
    const others = await request(alice, healthy);
    await allAtRest(stack.ds, [poison, ...others], 60_000);
    const [p] = await stack.ds.query('SELECT state, failure_cause FROM sessions WHERE id = $1', [poison]);
    expect(p).toEqual({ state: 'failed', failure_cause: 'worker_error' });
    const states = await stack.ds.query(`SELECT DISTINCT state FROM sessions WHERE id = ANY($1)`, [others]);
    expect(states).toEqual([{ state: 'active' }]);
    await expectInvariants(stack.ds, [poison, ...others]);
  });
});
