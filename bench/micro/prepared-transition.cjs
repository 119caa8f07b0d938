// One session transition (requested → validating → eligible → pushing_settings, as the worker's
// decision commits it: fenced UPDATE, three audit events, head update) sent as an unnamed statement
// against the same text as a named prepared statement, serially on one connection. Reports
// statements/s and the CPU of the PostgreSQL backend and of this client per statement, from /proc.
//
//   npm run build && node bench/micro/prepared-transition.cjs      (N=2000 per round, 2 rounds each)
//
// Needs PostgreSQL on BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres) on this
// host (the backend's CPU is read from /proc); creates and drops its own database.
const { createHash } = require('node:crypto');
const { join } = require('node:path');
const { ROOT, KEY, cpuMs, connect, withScratchDatabase, requestedSessions } = require('./lib.cjs');

const { applyTransitionBatch } = require(join(ROOT, 'dist/libs/sessions/src/index.js'));
const N = Number(process.env.N || 2000);

async function round(c, pid, mode) {
  const { ids, deviceIds, principalId } = await requestedSessions(c, N);
  const stmts = [];
  const capture = {
    query: async (text, values) => {
      stmts.push([text, values]);
      return [];
    },
  };
  for (const [i, id] of ids.entries()) {
    await applyTransitionBatch(capture, KEY, [
      {
        session: { id, state: 'requested', version: 0, deviceId: deviceIds[i], viewerId: principalId, ticketRef: null, head: null },
        actor: { id: null, kind: 'system' },
        steps: [{ to: 'validating' }, { to: 'eligible', patch: { consentRule: 'not_required' } }, { to: 'pushing_settings' }],
      },
    ]);
  }
  const name = `bench_${createHash('sha1').update(stmts[0][0]).digest('hex').slice(0, 16)}`;
  const [b0, c0, t0] = [cpuMs(pid), process.cpuUsage(), process.hrtime.bigint()];
  for (const [text, values] of stmts) {
    const r = mode === 'named' ? await c.query({ name, text, values }) : await c.query(text, values);
    if (r.rows.length !== 1) throw new Error('a transition did not apply');
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const client = process.cpuUsage(c0);
  return {
    mode,
    perSecond: Math.round(N / seconds),
    backendUs: Math.round(((cpuMs(pid) - b0) * 1000) / N),
    clientUs: Math.round((client.user + client.system) / N),
  };
}

withScratchDatabase('prepared', async (url) => {
  const c = await connect(url);
  for (const mode of ['unnamed', 'named', 'unnamed', 'named']) console.log(JSON.stringify(await round(c, c.pid, mode)));
  await c.end();
}).catch((err) => {
  console.error(err);
  process.exit(1);
});
