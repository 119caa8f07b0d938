// PostgreSQL backend CPU per session transition: one named statement per transition (the transition
// owner's statement for one session) sent from C concurrent connections, against one named statement
// carrying K transitions of K sessions (applyTransitionBatch). The transition is the worker's decision
// (requested → validating → eligible → pushing_settings: fenced UPDATE with a patch, three audit
// events, the stream head), with ALSO=1 plus its eligibility decision effect.
// Reports transitions/s and the CPU of the PostgreSQL backends (summed, from /proc) and of this
// client per transition. Background processes (WAL writer, checkpointer) are not counted.
//
//   npm run build && node bench/micro/batched-transitions.cjs     (N=2048 transitions per round)
//
// Needs PostgreSQL on BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres) on this
// host; creates and drops its own database.
const { createHash } = require('node:crypto');
const { join } = require('node:path');
const { ROOT, KEY, cpuMs, connect, withScratchDatabase, requestedSessions } = require('./lib.cjs');

const { applyTransitionBatch } = require(join(ROOT, 'dist/libs/sessions/src/index.js'));
const N = Number(process.env.N || 2048);
const ALSO = process.env.ALSO === '1';
const checks = JSON.stringify(Array.from({ length: 10 }, (_, i) => ({ id: `check_${i}`, passed: true, detail: 'ok' })));

async function requests(c) {
  const { ids, deviceIds, principalId } = await requestedSessions(c, N);
  await c.query('VACUUM ANALYZE sessions, audit_stream_heads');
  return ids.map((id, i) => ({
    session: { id, state: 'requested', version: 0, deviceId: deviceIds[i], viewerId: principalId, ticketRef: null, head: null },
    actor: { id: null, kind: 'system' },
    steps: [
      { to: 'validating' },
      { to: 'eligible', data: { consentRule: 'not_required' }, patch: { consentRule: 'not_required', settingsHash: 'abc' } },
      { to: 'pushing_settings' },
    ],
    effects: ALSO
      ? [
          {
            kind: 'decision',
            eligible: true,
            consentRule: 'not_required',
            checks: JSON.parse(checks),
            facts: { device: { id: deviceIds[i] } },
          },
        ]
      : [],
  }));
}

/** Statements as the library would send them, captured without a database. */
async function statements(reqs, k) {
  const stmts = [];
  const capture = {
    query: async (text, values) => {
      stmts.push({ text, values });
      return [];
    },
  };
  if (k === 0) for (const req of reqs) await applyTransitionBatch(capture, KEY, [req]);
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
  await Promise.all(
    clients.map(async (c, lane) => {
      for (const { text, values } of lanes[lane]) {
        const name = `bench_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`;
        const { rows } = await c.query({ name, text, values });
        applied += rows.length;
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const client = process.cpuUsage(c0);
  if (applied !== N) throw new Error(`${applied} of ${N} transitions applied`);
  return {
    mode: k === 0 ? 'one per statement' : `K=${k} per statement`,
    connections: clients.length,
    also: ALSO,
    transitionsPerSecond: Math.round(N / seconds),
    backendUsPerTransition: Math.round(((cpu() - b0) * 1000) / N),
    clientUsPerTransition: Math.round((client.user + client.system) / N),
  };
}

withScratchDatabase('batched', async (url) => {
  const setup = await connect(url);
  const pool = await Promise.all(Array.from({ length: 16 }, () => connect(url)));
  const plan = [
    [0, 16],
    [0, 1],
    [8, 1],
    [32, 1],
    [64, 1],
    [8, 4],
    [32, 4],
  ];
  for (let rep = 0; rep < 2; rep++) {
    for (const [k, conns] of plan) console.log(JSON.stringify(await round(setup, pool.slice(0, conns), k)));
  }
  await Promise.all([setup, ...pool].map((c) => c.end()));
}).catch((err) => {
  console.error(err);
  process.exit(1);
});
