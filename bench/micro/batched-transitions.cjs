// PostgreSQL backend CPU per session transition: one named statement per transition (the worker's
// `known` path, applyTransitions) sent from C concurrent connections, against one named statement
// carrying K transitions of K sessions (applyTransitionBatch). The transition is the worker's decision
// (requested → validating → eligible → pushing_settings: fenced UPDATE with a patch, three audit
// events, fenced head update), with ALSO=1 plus its eligibility_decisions row.
// Reports transitions/s and the CPU of the PostgreSQL backends (summed, from /proc) and of this
// client per transition. Background processes (WAL writer, checkpointer) are not counted.
//
//   npm run build && node bench/micro/batched-transitions.cjs     (N=2048 transitions per round)
//
// Needs PostgreSQL on BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres) on this
// host; creates and drops its own database.
const { execFileSync } = require('node:child_process');
const { createHash, randomUUID } = require('node:crypto');
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const { Client } = require('pg');

const ROOT = join(__dirname, '../..');
const { applyTransitions, applyTransitionBatch } = require(join(ROOT, 'dist/libs/database/src/index.js'));
const KEY = 'bench-audit-key-0123456789abcdef0123456789abcdef';
const N = Number(process.env.N || 2048);
const ALSO = process.env.ALSO === '1';
const ADMIN = process.env.BENCH_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const DB = `rcflow_bench_batched_${process.pid}`;
const dbUrl = () => { const u = new URL(ADMIN); u.pathname = `/${DB}`; return u.toString(); };
const cpuMs = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10; // clock ticks of 10 ms
};
const DECISION = {
  sql: `INSERT INTO eligibility_decisions (session_id, eligible, consent_rule, checks, facts)
        SELECT s.id, $1::boolean, $2::text, $3::jsonb, $4::jsonb FROM s`,
  batched: {
    sql: 'INSERT INTO eligibility_decisions (session_id, eligible, consent_rule, checks, facts) SELECT x.id, x.p1, x.p2, x.p3, x.p4 FROM x',
    types: ['boolean', 'text', 'jsonb', 'jsonb'],
  },
};
const checks = JSON.stringify(Array.from({ length: 10 }, (_, i) => ({ id: `check_${i}`, passed: true, detail: 'ok' })));

async function requests(c) {
  const ids = Array.from({ length: N }, () => randomUUID());
  const { rows: [p] } = await c.query(`INSERT INTO principals (name, kind) VALUES ('u-' || gen_random_uuid(), 'user') RETURNING id`);
  // One device per session: a device holds one controlling session at a time.
  const { rows: devices } = await c.query(
    `INSERT INTO devices (hostname, os_family) SELECT 'h-' || gen_random_uuid(), 'windows' FROM generate_series(1, $1) RETURNING id`, [N]);
  await c.query(
    `INSERT INTO sessions (id, device_id, viewer_id, requester_id, type, access, state, state_changed_at, version)
     SELECT u.id, u.device, $1, $1, 'remote-control', 'full', 'requested', now(), 0 FROM unnest($2::uuid[], $3::uuid[]) u(id, device)`,
    [p.id, ids, devices.map((d) => d.id)]);
  await c.query(`INSERT INTO audit_stream_heads (stream, seq, hash) SELECT 'session:' || u, 0, repeat('0', 64) FROM unnest($1::uuid[]) u`, [ids]);
  await c.query('VACUUM ANALYZE sessions, audit_stream_heads');
  return ids.map((id, i) => ({
    sessionId: id, from: 'requested', expectedVersion: 0, actor: { id: null, kind: 'system' },
    steps: [{ to: 'validating' }, { to: 'eligible', data: { consentRule: 'none' }, patch: { consentRule: 'none', settingsHash: 'abc' } }, { to: 'pushing_settings' }],
    known: { head: { seq: 0, hash: '0'.repeat(64) }, deviceId: devices[i].id, viewerId: p.id, ticketRef: null },
    also: ALSO ? [{ ...DECISION, params: [true, 'none', checks, JSON.stringify({ device: { id: devices[i].id } })] }] : [],
  }));
}

/** Statements as the library would send them, captured without a database. */
async function statements(reqs, k) {
  const stmts = [];
  const capture = { query: async (text, values) => { stmts.push({ text, values }); return []; } };
  if (k === 0) for (const req of reqs) await applyTransitions(capture, KEY, req);
  else for (let i = 0; i < reqs.length; i += k) await applyTransitionBatch(capture, KEY, reqs.slice(i, i + k));
  return stmts;
}

async function round(setup, clients, k) {
  const reqs = await requests(setup);
  const stmts = await statements(reqs, k);
  const lanes = clients.map(() => []);
  stmts.forEach((s, i) => lanes[i % clients.length].push(s));
  const cpu = () => clients.reduce((sum, c) => sum + cpuMs(c.pid), 0);
  const [b0, c0, t0] = [cpu(), process.cpuUsage(), process.hrtime.bigint()];
  let applied = 0;
  await Promise.all(clients.map(async (c, lane) => {
    for (const { text, values } of lanes[lane]) {
      const name = `bench_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`;
      const { rows } = await c.query({ name, text, values });
      applied += rows.length;
    }
  }));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const client = process.cpuUsage(c0);
  if (applied !== N) throw new Error(`${applied} of ${N} transitions applied`);
  return {
    mode: k === 0 ? 'one per statement' : `K=${k} per statement`, connections: clients.length, also: ALSO,
    transitionsPerSecond: Math.round(N / seconds), backendUsPerTransition: Math.round(((cpu() - b0) * 1000) / N),
    clientUsPerTransition: Math.round((client.user + client.system) / N),
  };
}

(async () => {
  const admin = new Client({ connectionString: ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${DB}`);
  try {
    execFileSync(process.execPath, [join(ROOT, 'dist/apps/api/src/cli.js'), 'migrate'], {
      env: { ...process.env, DATABASE_URL: dbUrl(), AUDIT_HMAC_KEY: KEY, LOG_LEVEL: 'error' }, stdio: 'ignore' });
    const connect = async () => {
      const c = new Client({ connectionString: dbUrl() });
      await c.connect();
      c.on('error', () => {}); // the database is dropped with the connections open after a failure
      c.pid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      return c;
    };
    const setup = await connect();
    const pool = await Promise.all(Array.from({ length: 16 }, connect));
    const plan = [[0, 16], [0, 1], [8, 1], [32, 1], [64, 1], [8, 4], [32, 4]];
    for (let rep = 0; rep < 2; rep++) {
      for (const [k, conns] of plan) console.log(JSON.stringify(await round(setup, pool.slice(0, conns), k)));
    }
    await Promise.all([setup, ...pool].map((c) => c.end()));
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
    await admin.end();
  }
})().catch((err) => { console.error(err); process.exit(1); });
