// One session transition (requested → validating → eligible → pushing_settings, as the worker's
// decision commits it: fenced UPDATE, three audit events, head update) sent as an unnamed statement
// against the same text as a named prepared statement, serially on one connection. Reports
// statements/s and the CPU of the PostgreSQL backend and of this client per statement, from /proc.
//
//   npm run build && node bench/micro/prepared-transition.cjs      (N=2000 per round, 2 rounds each)
//
// Needs PostgreSQL on BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres) on this
// host (the backend's CPU is read from /proc); creates and drops its own database.
const { execFileSync } = require('node:child_process');
const { createHash, randomUUID } = require('node:crypto');
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const { Client } = require('pg');

const ROOT = join(__dirname, '../..');
const { applyTransitions } = require(join(ROOT, 'dist/libs/database/src/index.js'));
const KEY = 'bench-audit-key-0123456789abcdef0123456789abcdef';
const N = Number(process.env.N || 2000);
const ADMIN = process.env.BENCH_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const DB = `rcflow_bench_prepared_${process.pid}`;
const dbUrl = () => { const u = new URL(ADMIN); u.pathname = `/${DB}`; return u.toString(); };
const cpuMs = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10; // clock ticks of 10 ms
};

async function round(c, pid, mode) {
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
  const stmts = [];
  const capture = { query: async (text, values) => { stmts.push([text, values]); return []; } };
  for (const [i, id] of ids.entries()) {
    await applyTransitions(capture, KEY, {
      sessionId: id, from: 'requested', expectedVersion: 0, actor: { id: null, kind: 'system' },
      steps: [{ to: 'validating' }, { to: 'eligible', patch: { consentRule: 'none' } }, { to: 'pushing_settings' }],
      known: { head: { seq: 0, hash: '0'.repeat(64) }, deviceId: devices[i].id, viewerId: p.id, ticketRef: null },
    });
  }
  const name = `bench_${createHash('sha1').update(stmts[0][0]).digest('hex').slice(0, 16)}`;
  const [b0, c0, t0] = [cpuMs(pid), process.cpuUsage(), process.hrtime.bigint()];
  for (const [text, values] of stmts) {
    const r = mode === 'named' ? await c.query({ name, text, values }) : await c.query(text, values);
    if (r.rows.length !== 1) throw new Error('a transition did not apply');
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const client = process.cpuUsage(c0);
  return { mode, perSecond: Math.round(N / seconds), backendUs: Math.round(((cpuMs(pid) - b0) * 1000) / N), clientUs: Math.round((client.user + client.system) / N) };
}

(async () => {
  const admin = new Client({ connectionString: ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${DB}`);
  try {
    execFileSync(process.execPath, [join(ROOT, 'dist/apps/api/src/cli.js'), 'migrate'], {
      env: { ...process.env, DATABASE_URL: dbUrl(), AUDIT_HMAC_KEY: KEY, LOG_LEVEL: 'error' }, stdio: 'ignore' });
    const c = new Client({ connectionString: dbUrl() });
    await c.connect();
    const { rows: [{ pid }] } = await c.query('SELECT pg_backend_pid() AS pid');
    for (const mode of ['unnamed', 'named', 'unnamed', 'named']) console.log(JSON.stringify(await round(c, pid, mode)));
    await c.end();
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
    await admin.end();
  }
})().catch((err) => { console.error(err); process.exit(1); });
