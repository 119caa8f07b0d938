// CPU profile of the end-to-end run: the same load as benchmark 1 for BENCH_PROFILE_SECONDS with
// the API and the worker under `node --cpu-prof`; each profile is summarised by self time
// (bench/cpuprofile-summary.mjs) and kept in bench/results/<timestamp>-profile/. Not counted in
// the figures (profiling slows the processes).
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuMeter, sleep } from './lib/proc.mjs';
import { ROOT, Stack } from './lib/stack.mjs';
import { SessionPump } from './lib/pump.mjs';
import { format, summarise } from './cpuprofile-summary.mjs';

/** Statements and commands per session between the SIGUSR2 mark and exit. */
function perSession(file, sessions) {
  const end = JSON.parse(readFileSync(file, 'utf8'));
  const start = JSON.parse(readFileSync(`${file}.start`, 'utf8'));
  const diff = (a, b) =>
    Object.entries(a)
      .map(([k, v]) => [k, v - (b[k] ?? 0)])
      .filter(([, v]) => v > 0)
      .sort((x, y) => y[1] - x[1]);
  const r1 = (x) => Math.round(x * 10) / 10;
  return {
    pg: r1((end.pgTotal - start.pgTotal) / sessions),
    redis: r1((end.redisTotal - start.redisTotal) / sessions),
    pgTop: diff(end.pg, start.pg)
      .slice(0, 25)
      .map(([sql, n]) => ({ sql, n: r1(n / sessions) })),
    redisTop: diff(end.redis, start.redis)
      .slice(0, 15)
      .map(([cmd, n]) => ({ cmd, n: r1(n / sessions) })),
  };
}

export async function run(ctx) {
  const P = ctx.params;
  const dir = join(ctx.resultsDir, `${ctx.ts}-profile`);
  mkdirSync(join(dir, 'api'), { recursive: true });
  mkdirSync(join(dir, 'worker'), { recursive: true });
  const stack = new Stack('profile', ctx, P.rcflowEnv);
  try {
    await stack.init();
    const counter = join(ROOT, 'bench/lib/count-roundtrips.cjs');
    const countFile = (which) => join(ctx.tmpDir, `${which}-counts.json`);
    await stack.startApi({ BENCH_COUNT_FILE: countFile('api') }, ['--cpu-prof', '--cpu-prof-dir', join(dir, 'api'), '--require', counter]);
    await stack.startWorker({ BENCH_COUNT_FILE: countFile('worker') }, [
      '--cpu-prof',
      '--cpu-prof-dir',
      join(dir, 'worker'),
      '--require',
      counter,
    ]);
    const world = await stack.seed();
    const sims = await stack.startSimulators({ count: P.e2eDevices, perProcess: P.e2eDevices, enrolToken: world.enrolToken });
    const devices = await stack.addDevicesToCollection('SIM');
    const pump = new SessionPump({
      api: stack.api.url,
      key: world.operatorKey,
      db: stack.db,
      devices,
      posters: P.e2ePosters,
      ratePerSecond: P.profileRate || null,
    });
    ctx.log(
      `  profile: ${P.profileSeconds} s of the end-to-end load (${P.profileRate ? `${P.profileRate} sessions/s` : 'closed loop, as benchmark 1'}) with --cpu-prof on the API and the worker`,
    );
    for (const p of [stack.api.proc, stack.worker]) p.child.kill('SIGUSR2');
    const from = new Date();
    const cpu = await cpuMeter(
      { api: stack.api.proc, worker: stack.worker, simulator: sims[0], redis: ctx.redisProc },
      { postgres: stack.pgCpu() },
    );
    pump.start();
    await sleep(P.profileSeconds * 1000);
    const cpuUse = await cpu();
    const to = new Date();
    await pump.stop({ drainMs: 30_000 });
    const [{ active }] = await stack.q(
      `SELECT count(*)::int AS active FROM audit_events WHERE action = 'session.active' AND occurred_at >= $1 AND occurred_at < $2`,
      [from, to],
    );
    const [{ handled }] = await stack.q(`SELECT count(*)::int AS handled FROM sessions WHERE created_at >= $1`, [from]);
    await stack.stopProcs('SIGTERM'); // profiles and counts are written on exit
    const out = {
      rate: P.profileRate || 'closed loop',
      sessionsPerSecondUnderProfiler: active / ((to - from) / 1000),
      cpu: cpuUse,
      sessionsHandled: handled,
      roundTripsPerSession: {},
    };
    const text = [];
    for (const which of ['api', 'worker']) {
      const c = perSession(countFile(which), handled);
      out.roundTripsPerSession[which] = c;
      text.push(
        `${which}: per session ${c.pg} PostgreSQL statements, ${c.redis} Redis commands (over ${handled} sessions)\n` +
          `  statements: ${c.pgTop.map((x) => `${x.n} × ${x.sql}`).join('\n              ')}\n` +
          `  redis: ${c.redisTop.map((x) => `${x.cmd} ${x.n}`).join(', ')}`,
      );
    }
    for (const which of ['api', 'worker']) {
      const file = readdirSync(join(dir, which)).find((f) => f.endsWith('.cpuprofile'));
      if (!file) continue;
      const s = summarise(JSON.parse(readFileSync(join(dir, which, file), 'utf8')), 30);
      out[which] = { file: join(dir, which, file), ...s };
      text.push(format(s, which));
    }
    writeFileSync(join(dir, 'summary.txt'), `${text.join('\n\n')}\n`);
    ctx.log(`profile written to ${dir}/summary.txt`);
    console.log(text.map((t) => t.split('\n').slice(0, 30).join('\n')).join('\n\n'));
    return out;
  } finally {
    await stack.destroy(ctx.redis);
  }
}
