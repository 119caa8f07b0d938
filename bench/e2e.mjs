// Benchmark 1: end-to-end throughput, sessions per second from POST /v1/sessions to active, with
// simulated agents answering at once and every transition and audit event committed in
// PostgreSQL; sustained for BENCH_E2E_SECONDS. Anchor in the same run: a bare BullMQ worker
// draining no-op jobs on the same Redis (bench/anchors/bullmq.mjs drain).
import { join } from 'node:path';
import { Proc, cpuMeter, sleep } from './lib/proc.mjs';
import { Stack, ROOT } from './lib/stack.mjs';
import { SessionPump } from './lib/pump.mjs';
import { percentiles, round } from './lib/stats.mjs';

export async function runAnchorDrain(ctx, prefix, jobs) {
  const p = new Proc(
    'anchor-drain',
    process.execPath,
    [
      join(ROOT, 'bench/anchors/bullmq.mjs'),
      'drain',
      '--redis',
      ctx.redisUrl,
      '--prefix',
      prefix,
      '--jobs',
      String(jobs),
      '--concurrency',
      '64',
    ],
    { logFile: join(ctx.logDir, 'anchor-drain.log') },
  );
  const r = await p.done;
  if (r.code !== 0) throw new Error(`anchor drain failed:\n${p.tail()}`);
  return JSON.parse(p.stdout.trim().split('\n').pop());
}

/** What the database says about sessions that became active between two instants. */
async function measureWindow(stack, from, to) {
  const [row] = await stack.q(
    `SELECT count(*)::int AS active FROM audit_events
      WHERE action = 'session.active' AND occurred_at >= $1 AND occurred_at < $2`,
    [from, to],
  );
  const [req] = await stack.q(
    `SELECT count(*)::int AS requested FROM audit_events
      WHERE action = 'session.requested' AND occurred_at >= $1 AND occurred_at < $2`,
    [from, to],
  );
  // Request-to-active time of the sessions activated in the window (audit timestamps).
  const lat = await stack.q(
    `SELECT extract(epoch FROM (a.occurred_at - r.occurred_at)) * 1000 AS ms
       FROM audit_events a JOIN audit_events r ON r.stream = a.stream AND r.seq = 1
      WHERE a.action = 'session.active' AND a.occurred_at >= $1 AND a.occurred_at < $2`,
    [from, to],
  );
  return { active: row.active, requested: req.requested, requestToActiveMs: percentiles(lat.map((r) => Number(r.ms))) };
}

export async function run(ctx) {
  const P = ctx.params;
  const stack = new Stack('e2e', ctx, P.rcflowEnv);
  const reps = [];
  try {
    await stack.init();
    await stack.startApi();
    await stack.startWorker();
    const world = await stack.seed();
    ctx.log(`  e2e: enrolling and connecting ${P.e2eDevices} simulated agents`);
    const sims = await stack.startSimulators({ count: P.e2eDevices, perProcess: P.e2eDevices, enrolToken: world.enrolToken });
    const devices = await stack.addDevicesToCollection('SIM');
    for (let i = 0; i < P.reps; i++) {
      const anchor = await runAnchorDrain(ctx, `${stack.prefix}anchor${i}`, P.anchorJobs);
      ctx.log(
        `  e2e rep ${i + 1}/${P.reps}: anchor (bare BullMQ drain) ${round(anchor.jobsPerSecond, 0)} jobs/s; running ${P.e2eWarmup} s warm-up + ${P.e2eSeconds} s`,
      );
      const pump = new SessionPump({ api: stack.api.url, key: world.operatorKey, db: stack.db, devices, posters: P.e2ePosters });
      pump.start();
      await sleep(P.e2eWarmup * 1000);
      const from = new Date();
      const cpu = await cpuMeter(
        { api: stack.api.proc, worker: stack.worker, simulator: sims[0], redis: ctx.redisProc },
        { postgres: stack.pgCpu() },
      );
      await sleep(P.e2eSeconds * 1000);
      const to = new Date();
      const cpuUse = await cpu();
      const left = await pump.stop({ drainMs: 60_000 });
      await sleep(500);
      const w = await measureWindow(stack, from, to);
      const seconds = (to - from) / 1000;
      const sessionsPerSecond = w.active / seconds;
      const rep = {
        sessionsPerSecond,
        anchorJobsPerSecond: anchor.jobsPerSecond,
        ratio: sessionsPerSecond / anchor.jobsPerSecond,
        seconds,
        activeInWindow: w.active,
        requestedPerSecond: w.requested / seconds,
        requestToActiveMs: w.requestToActiveMs,
        cpu: cpuUse,
        // CPU milliseconds per session, from the cores each process used over the window.
        cpuMsPerSession: Object.fromEntries(
          ['api', 'worker', 'postgres', 'redis', 'simulator'].map((k) => [k, round((cpuUse[k] * 1000) / sessionsPerSecond, 2)]),
        ),
        pump: { ...pump.counts, terminal: pump.terminal, leftOutstanding: left },
      };
      ctx.log(
        `    → ${round(sessionsPerSecond, 1)} sessions/s active (ratio ${round(rep.ratio, 4)}), request→active p50 ${round(w.requestToActiveMs.p50, 0)} ms, cores ${JSON.stringify(cpuUse)}`,
      );
      reps.push(rep);
    }
    // Every session's version equals its number of audit events (README: how the audit holds together).
    const [inv] = await stack.q(
      `SELECT (SELECT count(*) FROM sessions)::int AS sessions,
              (SELECT coalesce(sum(version), 0) FROM sessions)::int AS versions,
              (SELECT count(*) FROM audit_events WHERE stream LIKE 'session:%')::int AS events,
              (SELECT count(*) FROM outbox)::int AS outbox_left`,
    );
    const states = await stack.q(`SELECT state, count(*)::int AS n FROM sessions GROUP BY state ORDER BY state`);
    return { reps, checks: { ...inv, versionsEqualEvents: inv.versions === inv.events, states } };
  } finally {
    await stack.destroy(ctx.redis);
  }
}
