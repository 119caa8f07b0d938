// Benchmark 4: agent fan-in. BENCH_FANIN_AGENTS simulated agents (several simulator processes,
// BENCH_FANIN_PER_PROCESS each, as a process may hold at most `ulimit -n` files) connected to ONE
// API process, heartbeat every 30 s, held for BENCH_FANIN_HOLD seconds. Measured: agents
// connected, the API's resident memory (VmRSS) before and with them, memory per connection, and
// devices falsely offline (last heartbeat older than PRESENCE_GRACE_SECONDS while connected).
// Memory per connection is the slope of the API's RSS against agents connected, read after each
// simulator process is ready (bytesPerConnectionEndOfHold: (RSS at the end − RSS before) / N).
// Anchor in the same run: bench/anchors/bare-ws.mjs with the same number of connections.
import { join } from 'node:path';
import { Proc, cpuMeter, freePort, sleep } from './lib/proc.mjs';
import { Stack, ROOT } from './lib/stack.mjs';
import { round } from './lib/stats.mjs';

const MiB = 1024 * 1024;

/** Least-squares slope of y on x. */
function slope(points) {
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const sxy = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return sxy / sxx;
}

async function bareWs(ctx, count, holdSeconds) {
  const port = await freePort();
  const server = new Proc('bare-ws', process.execPath, [join(ROOT, 'bench/anchors/bare-ws.mjs'), 'server', '--port', String(port)], {
    logFile: join(ctx.logDir, 'bare-ws.log'),
  });
  let clients = null;
  try {
    await server.waitFor(/bare-ws listening/);
    await sleep(1000);
    const base = server.rss();
    clients = new Proc(
      'bare-ws-clients',
      process.execPath,
      [join(ROOT, 'bench/anchors/bare-ws.mjs'), 'clients', '--port', String(port), '--count', String(count)],
      { logFile: join(ctx.logDir, 'bare-ws.log') },
    );
    await clients.waitFor(/clients ready/, 300_000);
    await sleep(holdSeconds * 1000);
    const rss = server.rss();
    return { baseRss: base, rss, bytesPerConnection: (rss - base) / count };
  } finally {
    await clients?.stop();
    await server.stop();
  }
}

function lastStatus(sim) {
  const line = [...sim.lines].reverse().find((l) => l.includes('simulator status:')) ?? '';
  const m = /connected (\d+)\/(\d+).*reconnects (\d+), refused (\d+)/.exec(line);
  return m ? { connected: Number(m[1]), of: Number(m[2]), reconnects: Number(m[3]), refused: Number(m[4]) } : null;
}

export async function run(ctx) {
  const P = ctx.params;
  const N = P.faninAgents;
  const grace = Number(P.rcflowEnv.PRESENCE_GRACE_SECONDS ?? 90);
  const stack = new Stack('fanin', ctx, { AGENT_HEARTBEAT_SECONDS: '30', ...P.rcflowEnv });
  const reps = [];
  try {
    await stack.init();
    await stack.startApi();
    const world = await stack.seed({ enrolUses: N + 10 });
    // Enrolment once (credentials kept in state files), not timed.
    ctx.log(`  fan-in: enrolling ${N} simulated agents (${Math.ceil(N / P.faninPerProcess)} simulator processes)`);
    const t0 = Date.now();
    await stack.startSimulators({
      count: N,
      perProcess: P.faninPerProcess,
      prefix: 'FAN',
      enrolToken: world.enrolToken,
      stateDir: ctx.tmpDir,
    });
    ctx.log(`  fan-in: ${N} enrolled and connected in ${round((Date.now() - t0) / 1000, 0)} s`);
    await stack.stopProcs();

    for (let i = 0; i < P.reps; i++) {
      await stack.startApi();
      await sleep(5000);
      const baseRss = stack.api.proc.rss();
      // Simulator processes one after the other, the API's RSS read after each: the slope of RSS
      // against connections is the memory per connection, whatever garbage the baseline holds.
      const points = [[0, baseRss]];
      const sims = [];
      const c0 = Date.now();
      for (let first = 1, index = 0; first <= N; first += P.faninPerProcess, index++) {
        const n = Math.min(P.faninPerProcess, N - first + 1);
        sims.push(await stack.startSimulator({ first, n, index, prefix: 'FAN', stateDir: ctx.tmpDir }));
        await sleep(2000);
        points.push([first + n - 1, stack.api.proc.rss()]);
      }
      const connectSeconds = (Date.now() - c0) / 1000;
      let peakRss = stack.api.proc.rss();
      let maxOffline = 0;
      let maxAge = 0;
      const cpu = await cpuMeter({ api: stack.api.proc, redis: ctx.redisProc }, { postgres: stack.pgCpu() });
      const holdEnd = Date.now() + P.faninHold * 1000;
      while (Date.now() < holdEnd) {
        await sleep(Math.min(10_000, holdEnd - Date.now()));
        peakRss = Math.max(peakRss, stack.api.proc.rss());
        const [row] = await stack.q(
          `SELECT count(*) FILTER (WHERE last_heartbeat_at IS NULL OR last_heartbeat_at < now() - make_interval(secs => $1))::int AS offline,
                  extract(epoch FROM max(now() - last_heartbeat_at))::float AS max_age
             FROM devices WHERE hostname LIKE 'FAN-%'`,
          [grace],
        );
        maxOffline = Math.max(maxOffline, row.offline);
        maxAge = Math.max(maxAge, row.max_age);
      }
      const rss = stack.api.proc.rss();
      const cpuHold = await cpu();
      const status = sims.map(lastStatus);
      const connected = status.reduce((a, s) => a + (s?.connected ?? 0), 0);
      const reconnects = status.reduce((a, s) => a + (s?.reconnects ?? 0), 0);
      await stack.stopProcs();
      const anchor = await bareWs(ctx, N, Math.min(10, P.faninHold));
      const perConn = slope(points);
      const rep = {
        agents: connected,
        target: N,
        connectSeconds,
        apiBaseRssMiB: baseRss / MiB,
        apiRssMiB: rss / MiB,
        apiPeakRssMiB: peakRss / MiB,
        bytesPerConnection: perConn,
        bytesPerConnectionEndOfHold: (rss - baseRss) / N,
        rssPointsMiB: points.map(([n, b]) => [n, round(b / MiB, 1)]),
        anchorBytesPerConnection: anchor.bytesPerConnection,
        anchorRssMiB: anchor.rss / MiB,
        ratio: perConn / anchor.bytesPerConnection,
        falselyOffline: maxOffline,
        maxHeartbeatAgeSeconds: maxAge,
        reconnects,
        cpuDuringHold: cpuHold,
        extrapolated100kGiB: (baseRss + perConn * 100_000) / (1024 * MiB),
      };
      ctx.log(
        `  fan-in rep ${i + 1}/${P.reps}: ${connected}/${N} connected in ${round(connectSeconds, 0)} s, API RSS ${round(rep.apiRssMiB, 0)} MiB (base ${round(rep.apiBaseRssMiB, 0)}, points ${JSON.stringify(rep.rssPointsMiB)}), ${round(perConn / 1024, 1)} KiB/connection (end of hold ${round(rep.bytesPerConnectionEndOfHold / 1024, 1)}) (bare ws ${round(anchor.bytesPerConnection / 1024, 1)} KiB), offline ${maxOffline}, max heartbeat age ${round(maxAge, 0)} s, reconnects ${reconnects}; cores while holding ${JSON.stringify(cpuHold)}`,
      );
      reps.push(rep);
    }
    return { reps };
  } finally {
    await stack.destroy(ctx.redis);
  }
}
