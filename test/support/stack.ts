import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { createDataSource } from '../../libs/database/src';
import { TEST_AUDIT_KEY, TEST_TICKET_KEY, freshDatabase, queuePrefix } from './env';
import { FaultProxy } from './fault-proxy';
import { Api } from './http';
import { RcflowProcess, runCli } from './processes';
import { PrivateRedis, freePort } from './redis-server';
import { tearDown } from './teardown';

/** rcflow as a user runs it: API processes and a worker on PostgreSQL and a Redis the test can kill. */
export interface Stack {
  env: Record<string, string>;
  redis: PrivateRedis;
  ds: DataSource;
  apis: { proc: RcflowProcess; api: Api }[];
  worker: RcflowProcess;
  /** The first API, as the bootstrap administrator. */
  admin: Api;
  /** With `faultProxies`: what stands between rcflow's processes and Redis / PostgreSQL (the test's own `ds` goes direct). */
  proxies: { redis: FaultProxy; postgres: FaultProxy } | null;
  stop(): Promise<void>;
}

export interface StackOptions {
  /** Puts a FaultProxy between every rcflow process and Redis, and another before PostgreSQL. */
  faultProxies?: boolean;
}

/** `url` with its host and port replaced by the proxy's. */
function through(url: string, proxy: FaultProxy): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(proxy.port);
  return u.toString();
}

export async function startStack(tag: string, overrides: Record<string, string>, apiCount = 1, options: StackOptions = {}): Promise<Stack> {
  const redis = await PrivateRedis.start();
  const started: RcflowProcess[] = [];
  let proxies: Stack['proxies'] = null;
  let ds: DataSource | null = null;
  // Audit checkpoints of this stack's database only: a shared directory would hold other runs' ones.
  const checkpoints = mkdtempSync(join(tmpdir(), `rcflow-checkpoints-${tag}-`));
  /** Every process, the pool and Redis, each tried whatever happened to the others. */
  const stop = () =>
    tearDown({
      processes: () => Promise.all(started.map((p) => p.stop('SIGKILL'))),
      database: () => ds?.isInitialized && ds.destroy(),
      redis: () => redis.stop(),
      proxies: () => proxies && Promise.all([proxies.redis.stop(), proxies.postgres.stop()]),
    }).finally(() => rmSync(checkpoints, { recursive: true, force: true }));
  try {
    const dbUrl = await freshDatabase(tag);
    if (options.faultProxies) {
      const pgPort = Number(new URL(dbUrl).port || 5432);
      proxies = { redis: await FaultProxy.start(redis.port), postgres: await FaultProxy.start(pgPort, new URL(dbUrl).hostname) };
    }
    const env: Record<string, string> = {
      DATABASE_URL: proxies ? through(dbUrl, proxies.postgres) : dbUrl,
      REDIS_URL: proxies ? through(redis.url, proxies.redis) : redis.url,
      QUEUE_PREFIX: queuePrefix(tag),
      AUDIT_HMAC_KEY: TEST_AUDIT_KEY,
      AUDIT_CHECKPOINT_DIR: checkpoints,
      TICKET_SECRETS_KEY: TEST_TICKET_KEY,
      LOG_LEVEL: 'info',
      OUTBOX_POLL_MS: '100',
      SWEEP_INTERVAL_MS: '500',
      SWEEP_STALE_MS: '3000',
      JOB_BACKOFF_MS: '100',
      // Several workers run on this machine at once (other spec files, a test's second worker): no ops listener unless a test asks.
      WORKER_HTTP_PORT: '0',
      ...overrides,
    };
    const boot = await runCli(env, ['bootstrap-admin', '--name', 'root']);
    if (boot.code !== 0) throw new Error(`bootstrap-admin failed:\n${boot.output}`);
    const adminKey = /rcf_[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}/.exec(boot.output)![0];
    const ports = await Promise.all(Array.from({ length: apiCount }, () => freePort()));
    const worker = RcflowProcess.start('worker', env);
    started.push(worker);
    const apis = ports.map((port) => {
      const proc = RcflowProcess.start('api', { ...env, PORT: String(port) });
      started.push(proc);
      return { proc, api: new Api(`http://127.0.0.1:${port}`) };
    });
    // Start-up on a loaded 2-core machine took over 20 s once; the hook's own timeout still bounds it.
    await Promise.all([worker.waitFor('worker running', 90_000), ...apis.map((a) => a.proc.waitFor('api listening', 90_000))]);
    ds = createDataSource({ url: dbUrl, pgliteDir: '', poolSize: 2 });
    await ds.initialize();
    const stack: Stack = {
      env,
      redis,
      ds,
      apis,
      worker,
      admin: apis[0].api.as(adminKey),
      proxies,
      async stop() {
        // The processes a test put in place of the first ones (restarts) are the ones to stop now.
        started.push(stack.worker, ...stack.apis.map((a) => a.proc));
        await stop();
      },
    };
    return stack;
  } catch (err) {
    // A stack that failed to start leaves nothing running: the suite's afterAll never sees it.
    await stop().catch(() => undefined);
    throw err;
  }
}

export interface OperatorWorld {
  ids: Record<string, string>;
  keys: { alice: string; bob: string; bot: string };
}

/**
 * Through the administration API: alice (in HELPDESK, a permitted viewer), bob (an operator who
 * is not a permitted viewer), a ticket bot; the collection "Desks" under settings that enable
 * remote control for HELPDESK, plus "Servers" outside everyone's scope but the administrator's.
 */
export async function seedOperatorWorld(admin: Api, remoteTools: Record<string, unknown> = {}): Promise<OperatorWorld> {
  const mk = async (path: string, body: unknown) => {
    const r = await admin.post(path, body);
    if (r.status !== 201) throw new Error(`${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.id as string;
  };
  const put = async (path: string) => {
    const r = await admin.put(path);
    if (r.status !== 200) throw new Error(`${path}: ${r.status} ${JSON.stringify(r.body)}`);
  };
  const ids: Record<string, string> = {};
  ids.alice = await mk('/v1/principals', { name: 'alice', kind: 'user' });
  ids.bob = await mk('/v1/principals', { name: 'bob', kind: 'user' });
  ids.bot = await mk('/v1/principals', { name: 'ticket-bot', kind: 'service' });
  ids.helpdesk = await mk('/v1/principals', { name: 'HELPDESK', kind: 'group' });
  await put(`/v1/principals/${ids.helpdesk}/members/${ids.alice}`);
  ids.desks = await mk('/v1/collections', { name: 'Desks' });
  ids.servers = await mk('/v1/collections', { name: 'Servers' });
  ids.settings = await mk('/v1/client-settings', {
    name: 'Desks RC',
    order: 5,
    remoteTools: { enabled: true, permittedViewers: ['HELPDESK'], ...remoteTools },
  });
  await put(`/v1/client-settings/${ids.settings}/deployments/${ids.desks}`);
  await mk('/v1/role-assignments', { principalId: ids.helpdesk, role: 'remote_tools_operator', collectionIds: [ids.desks] });
  await mk('/v1/role-assignments', { principalId: ids.bob, role: 'remote_tools_operator', collectionIds: [ids.desks] });
  await mk('/v1/role-assignments', { principalId: ids.bot, role: 'ticket_integration', collectionIds: [ids.desks] });
  const key = async (principalId: string) => (await admin.post('/v1/api-keys', { principalId, name: 'test' })).body.key as string;
  return { ids, keys: { alice: await key(ids.alice), bob: await key(ids.bob), bot: await key(ids.bot) } };
}

/** Registers a device through the administration API and puts it in a collection. */
export async function addDevice(admin: Api, collectionId: string, hostname: string, fields: Record<string, unknown> = {}): Promise<string> {
  const r = await admin.post('/v1/devices', {
    hostname,
    osFamily: 'windows',
    osBuild: '10.0.22631',
    agentVersion: '1.2.0',
    domainJoined: true,
    loggedOnUser: 'CONTOSO\\carol',
    lastHeartbeatAt: new Date().toISOString(),
    ...fields,
  });
  if (r.status !== 201) throw new Error(`device ${hostname}: ${r.status} ${JSON.stringify(r.body)}`);
  const put = await admin.put(`/v1/collections/${collectionId}/members/${r.body.id}`);
  if (put.status !== 200) throw new Error(`membership: ${put.status}`);
  return r.body.id;
}

/** Waits until a session reaches one of `states`. */
export async function sessionReaches(api: Api, id: string, states: string[], timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    last = (await api.get(`/v1/sessions/${id}`)).body?.state;
    if (states.includes(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`session ${id} stayed ${last}, expected ${states.join('|')}`);
}
