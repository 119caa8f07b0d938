// rcflow as it runs for real, for one benchmark: a fresh database, a queue prefix on the run's
// private Redis, the CLI (migrate, bootstrap-admin), API and worker processes, and seed data
// created through the administration API.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { Proc, freePort, pidGroupSampler, run, sleep } from './proc.mjs';
import { client, keepAliveAgent } from './http.mjs';

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
/**
 * Where rcflow's compiled apps are run from: bench.mjs copies dist/ to bench/.snapshot-<ts>/ at the
 * start (BENCH_DIST) so that a rebuild by someone else during the run changes nothing under test.
 */
export const dist = (...p) => join(process.env.BENCH_DIST ?? join(ROOT, 'dist'), ...p);
export const PG_ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const AUDIT_KEY = 'bench-audit-key-0123456789abcdef0123456789abcdef';

export async function adminQuery(sql, params = []) {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** A private redis-server for the whole run (no persistence, noeviction, loopback only). */
export async function startRedis(dir, logDir) {
  const port = await freePort();
  const p = new Proc(
    'redis',
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', '--dir', dir],
    { logFile: join(logDir, 'redis.log') },
  );
  await p.waitFor(/Ready to accept connections/, 10_000);
  return { proc: p, port, url: `redis://127.0.0.1:${port}` };
}

export function dbUrl(name) {
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

export class Stack {
  /**
   * tag: short name of the benchmark; ctx: { ts, redisUrl, logDir, params }.
   * env: extra rcflow environment (WORKER_CONCURRENCY, DB_POOL_SIZE, ...).
   */
  constructor(tag, ctx, env = {}) {
    this.tag = tag;
    this.ctx = ctx;
    this.dbName = `rcflow_bench_${ctx.ts}_${tag}`;
    this.prefix = `rcfbench${ctx.ts}${tag}`;
    this.env = {
      DATABASE_URL: dbUrl(this.dbName),
      REDIS_URL: ctx.redisUrl,
      QUEUE_PREFIX: this.prefix,
      AUDIT_HMAC_KEY: AUDIT_KEY,
      NODE_ENV: 'production',
      LOG_LEVEL: 'info', // as in production: an access line per request and a line per session transition (JSON)
      AGENT_TRANSPORT: 'websocket',
      RATE_LIMIT_PER_MINUTE: '1000000', // the maximum rcflow accepts: ~16,700 requests/s per caller
      // Thousands of simulated agents enrol and connect from this one address.
      RATE_LIMIT_ADDRESS_PER_MINUTE: '1000000',
      RATE_LIMIT_ENROL_PER_MINUTE: '1000000',
      RATE_LIMIT_UPGRADE_PER_MINUTE: '1000000',
      AGENT_HEARTBEAT_SECONDS: '30',
      // The machine's Redis as it is (often without the append-only file); no worker ops listener (several workers share the host).
      REDIS_ALLOW_NO_AOF: 'true',
      WORKER_HTTP_PORT: '0',
      ...env,
    };
    this.procs = [];
  }

  log(name) {
    return join(this.ctx.logDir, `${this.tag}-${name}.log`);
  }

  async init() {
    await adminQuery(`CREATE DATABASE ${this.dbName}`);
    this.db = new pg.Pool({ connectionString: this.env.DATABASE_URL, max: 4, application_name: 'rcflow-bench-driver' });
    this.db.on('error', () => undefined); // idle clients see the database dropped at the end
    await run('migrate', process.execPath, [dist('apps/api/src/cli.js'), 'migrate'], { env: this.env, logFile: this.log('cli') });
    const out = await run('bootstrap-admin', process.execPath, [dist('apps/api/src/cli.js'), 'bootstrap-admin', '--name', 'root'], {
      env: this.env,
      logFile: this.log('cli'),
    });
    this.adminKey = /rcf_[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}/.exec(out)?.[0];
    if (!this.adminKey) throw new Error(`bootstrap-admin printed no key:\n${out}`);
    return this;
  }

  /** Pids of rcflow's PostgreSQL backends on this benchmark's database (pools keep them open; the driver's own are left out). */
  async pgPids() {
    const rows = await this.q(
      `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name <> 'rcflow-bench-driver'`,
    );
    return rows.map((r) => r.pid);
  }

  /** A sampler of the CPU of rcflow's PostgreSQL backends, for cpuMeter. */
  pgCpu() {
    return pidGroupSampler(() => this.pgPids());
  }

  q(sql, params) {
    return this.db.query(sql, params).then((r) => r.rows);
  }

  /** Starts an API process; resolves once it listens. nodeArgs e.g. ['--cpu-prof', ...]. */
  async startApi(env = {}, nodeArgs = []) {
    const port = await freePort();
    const p = new Proc('api', process.execPath, [...nodeArgs, dist('apps/api/src/main.js')], {
      env: { ...this.env, PORT: String(port), ...env },
      logFile: this.log('api'),
    });
    await p.waitFor(/api listening on/, 60_000);
    this.procs.push(p);
    this.api = { proc: p, port, url: `http://127.0.0.1:${port}` };
    this.admin = client(this.api.url, this.adminKey, keepAliveAgent(16));
    return this.api;
  }

  async startWorker(env = {}, nodeArgs = []) {
    const p = new Proc('worker', process.execPath, [...nodeArgs, dist('apps/worker/src/main.js')], {
      env: { ...this.env, ...env },
      logFile: this.log('worker'),
    });
    await p.waitFor(/worker running/, 60_000);
    this.procs.push(p);
    this.worker = p;
    return p;
  }

  /** Starts one simulator process for agents PREFIX-first … PREFIX-(first+n-1); resolves once all are connected. */
  async startSimulator({ first, n, index = 0, prefix = 'SIM', enrolToken, stateDir, readyTimeoutMs = 600_000 }) {
    const args = [
      dist('apps/agent/src/simulator.js'),
      '--server',
      this.api.url,
      '--count',
      String(n),
      '--prefix',
      prefix,
      '--first-index',
      String(first),
      '--consent-accept',
      '1',
      '--consent-deny',
      '0',
      '--consent-timeout',
      '0',
      '--latency-ms',
      '0',
      '--status-seconds',
      '5',
    ];
    if (enrolToken) args.push('--enrol', enrolToken);
    if (stateDir) args.push('--state-file', join(stateDir, `${prefix}-${index}.json`));
    const sim = new Proc(`simulator-${index}`, process.execPath, args, { logFile: this.log(`simulator-${index}`) });
    this.procs.push(sim);
    await sim.waitFor(/simulator ready: \d+ agents connected/, readyTimeoutMs);
    return sim;
  }

  /** Simulator processes for `count` agents (PREFIX-1 …), `perProcess` each, started together. */
  startSimulators({ count, perProcess, ...rest }) {
    const starts = [];
    for (let first = 1, index = 0; first <= count; first += perProcess, index++) {
      starts.push(this.startSimulator({ first, n: Math.min(perProcess, count - first + 1), index, ...rest }));
    }
    return Promise.all(starts);
  }

  /**
   * An operator who may control devices of the collection "Bench", client settings that enable
   * remote control for it without a consent prompt, and an enrolment token. `remoteTools`: more
   * client settings on top (e.g. remote assistance for the ticket rules' sessions).
   */
  async seed({ enrolUses = 100_000, remoteTools = {} } = {}) {
    const a = this.admin;
    const mk = async (path, body) => {
      const r = await a.post(path, body);
      if (r.status !== 201 && r.status !== 200) throw new Error(`POST ${path}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    };
    const operator = await mk('/v1/principals', { name: 'bench-operator', kind: 'user' });
    const collection = await mk('/v1/collections', { name: 'Bench' });
    const settings = await mk('/v1/client-settings', {
      name: 'Bench RC',
      order: 1,
      remoteTools: { enabled: true, permittedViewers: ['bench-operator'], permissionRequired: false, ...remoteTools },
    });
    const dep = await a.put(`/v1/client-settings/${settings.id}/deployments/${collection.id}`);
    if (dep.status !== 200) throw new Error(`deployment: ${dep.status} ${JSON.stringify(dep.body)}`);
    await mk('/v1/role-assignments', { principalId: operator.id, role: 'remote_tools_operator', collectionIds: [collection.id] });
    const key = (await mk('/v1/api-keys', { principalId: operator.id, name: 'bench' })).key;
    const token = (await mk('/v1/enrolment-tokens', { maxUses: enrolUses, expiresInSeconds: 86_400 })).token;
    this.world = { operatorId: operator.id, collectionId: collection.id, operatorKey: key, enrolToken: token };
    return this.world;
  }

  /** Puts every device whose host name starts with `prefix` into the Bench collection; returns their ids. */
  async addDevicesToCollection(prefix) {
    const ids = (await this.q(`SELECT id FROM devices WHERE hostname LIKE $1 ORDER BY hostname`, [`${prefix}-%`])).map((r) => r.id);
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < ids.length) {
          const id = ids[next++];
          const r = await this.admin.put(`/v1/collections/${this.world.collectionId}/members/${id}`);
          if (r.status !== 200) throw new Error(`membership of ${id}: ${r.status} ${JSON.stringify(r.body)}`);
        }
      }),
    );
    return ids;
  }

  async stopProcs(signal = 'SIGTERM') {
    // Simulators first (agents leave), then API and worker.
    const order = [...this.procs].sort((x, y) => Number(y.name.startsWith('simulator')) - Number(x.name.startsWith('simulator')));
    for (const p of order.filter((x) => x.name.startsWith('simulator'))) await p.stop(signal, 15_000);
    await Promise.all(order.filter((x) => !x.name.startsWith('simulator')).map((p) => p.stop(signal, 30_000)));
    this.procs = [];
  }

  /** Warnings and errors rcflow's processes logged (first few), for the results file. */
  logProblems(max = 20) {
    const out = [];
    for (const name of ['api', 'worker']) {
      let text = '';
      try {
        text = readFileSync(this.log(name), 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n')) {
        if (/"level":"(warn|error|fatal)"|\b(WARN|ERROR|FATAL)\b/.test(line) && out.length < max)
          out.push(`${name}: ${line.slice(0, 400)}`);
      }
    }
    return out;
  }

  /** Stops the processes, drops the database and deletes the prefix's Redis keys. */
  async destroy(redis) {
    await this.stopProcs('SIGKILL').catch(() => undefined);
    this.ctx.problems[this.tag] = this.logProblems();
    await this.db?.end().catch(() => undefined);
    if (process.env.BENCH_KEEP_DB === '1') this.ctx.log(`  kept database ${this.dbName} (BENCH_KEEP_DB=1; drop it yourself)`);
    else
      await adminQuery(`DROP DATABASE IF EXISTS ${this.dbName} WITH (FORCE)`).catch((e) =>
        console.error(`drop ${this.dbName}: ${e.message}`),
      );
    if (redis) await deleteKeys(redis, `${this.prefix}*`);
  }
}

/** Deletes keys matching a pattern (SCAN + UNLINK). */
export async function deleteKeys(redis, pattern) {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
}

export { sleep };
