// What the micro benchmarks share: a scratch database migrated by rcflow's CLI, CPU of a
// PostgreSQL backend from /proc, and sessions in `requested` with their audit heads.
const { execFileSync } = require('node:child_process');
const { randomUUID } = require('node:crypto');
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const { Client } = require('pg');

const ROOT = join(__dirname, '../..');
const KEY = 'bench-audit-key-0123456789abcdef0123456789abcdef';
const ADMIN = process.env.BENCH_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres';

/** CPU time of a process in ms, from /proc (clock ticks of 10 ms). */
function cpuMs(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** A connection to `url` that knows its backend's pid. */
async function connect(url) {
  const c = new Client({ connectionString: url });
  await c.connect();
  c.on('error', () => {}); // the database is dropped with the connections open after a failure
  c.pid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
  return c;
}

/** Runs `fn(url)` against a fresh database migrated by `cli.js migrate`, dropped afterwards. */
async function withScratchDatabase(tag, fn) {
  const db = `rcflow_bench_${tag}_${process.pid}`;
  const u = new URL(ADMIN);
  u.pathname = `/${db}`;
  const admin = new Client({ connectionString: ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${db}`);
  try {
    execFileSync(process.execPath, [join(ROOT, 'dist/apps/api/src/cli.js'), 'migrate'], {
      env: { ...process.env, DATABASE_URL: u.toString(), AUDIT_HMAC_KEY: KEY, LOG_LEVEL: 'error' },
      stdio: 'ignore',
    });
    await fn(u.toString());
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await admin.end();
  }
}

/** n sessions in `requested` at version 0, one device each (a device holds one controlling session), with genesis heads. */
async function requestedSessions(c, n) {
  const ids = Array.from({ length: n }, () => randomUUID());
  const {
    rows: [p],
  } = await c.query(`INSERT INTO principals (name, kind) VALUES ('u-' || gen_random_uuid(), 'user') RETURNING id`);
  const { rows: devices } = await c.query(
    `INSERT INTO devices (hostname, os_family) SELECT 'h-' || gen_random_uuid(), 'windows' FROM generate_series(1, $1) RETURNING id`,
    [n],
  );
  await c.query(
    `INSERT INTO sessions (id, device_id, viewer_id, requester_id, type, access, state, state_changed_at, version)
     SELECT u.id, u.device, $1, $1, 'remote-control', 'full', 'requested', now(), 0 FROM unnest($2::uuid[], $3::uuid[]) u(id, device)`,
    [p.id, ids, devices.map((d) => d.id)],
  );
  return { ids, deviceIds: devices.map((d) => d.id), principalId: p.id };
}

module.exports = { ROOT, KEY, cpuMs, connect, withScratchDatabase, requestedSessions };
