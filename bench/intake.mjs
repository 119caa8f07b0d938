// Benchmark 3: intake, POST /v1/sessions requests/s (202) on one API process, closed loop over
// BENCH_INTAKE_CONNECTIONS keep-alive connections. No worker runs: the sessions stay requested
// (their jobs reach Redis through the outbox relay of the API, which is part of the cost).
// Anchor in the same run: bench/anchors/bare-nest.mjs, one NestJS route answering 202.
import { join } from 'node:path';
import { Proc, cpuMeter, freePort, sleep } from './lib/proc.mjs';
import { Stack, ROOT } from './lib/stack.mjs';
import { closedLoop } from './lib/http.mjs';
import { percentiles, round } from './lib/stats.mjs';

export async function run(ctx) {
  const P = ctx.params;
  const stack = new Stack('intake', ctx, P.rcflowEnv);
  let bare = null;
  const reps = [];
  try {
    await stack.init();
    await stack.startApi();
    const world = await stack.seed();
    // One device in the operator's collection, registered through the administration API.
    const dev = await stack.admin.post('/v1/devices', {
      hostname: 'INTAKE-1',
      osFamily: 'windows',
      lastHeartbeatAt: new Date().toISOString(),
      loggedOnUser: 'carol',
    });
    if (dev.status !== 201) throw new Error(`device: ${dev.status} ${JSON.stringify(dev.body)}`);
    await stack.admin.put(`/v1/collections/${world.collectionId}/members/${dev.body.id}`);
    const port = await freePort();
    bare = new Proc('bare-nest', process.execPath, [join(ROOT, 'bench/anchors/bare-nest.mjs')], {
      env: { PORT: String(port) },
      logFile: join(ctx.logDir, 'bare-nest.log'),
    });
    await bare.waitFor(/bare listening/);
    const body = { deviceId: dev.body.id, type: 'remote-control', access: 'full' };
    const load = (base, headers) =>
      closedLoop({
        base,
        method: 'POST',
        path: '/v1/sessions',
        body,
        headers,
        connections: P.intakeConnections,
        seconds: P.intakeSeconds,
        expect: 202,
      });
    // Warm both (JIT, connection pools, caches).
    await load(`http://127.0.0.1:${port}`, {});
    await load(stack.api.url, { authorization: `Bearer ${world.operatorKey}` });
    for (let i = 0; i < P.reps; i++) {
      const cb = await cpuMeter({ server: bare });
      const a = await load(`http://127.0.0.1:${port}`, {});
      const cpuBare = await cb();
      await sleep(1000);
      const cr = await cpuMeter({ server: stack.api.proc, redis: ctx.redisProc }, { postgres: stack.pgCpu() });
      const r = await load(stack.api.url, { authorization: `Bearer ${world.operatorKey}` });
      const cpuReal = await cr();
      const rep = {
        requestsPerSecond: r.rps,
        anchorRequestsPerSecond: a.rps,
        ratio: r.rps / a.rps,
        latencyMs: percentiles(r.latencies),
        anchorLatencyMs: percentiles(a.latencies),
        statuses: r.byStatus,
        anchorStatuses: a.byStatus,
        errors: r.errors + a.errors,
        cpu: { real: cpuReal, bare: cpuBare },
      };
      ctx.log(
        `  intake rep ${i + 1}/${P.reps}: ${round(r.rps, 0)} req/s against bare ${round(a.rps, 0)} req/s (ratio ${round(rep.ratio, 3)}); api ${cpuReal.server} cores, machine ${cpuReal.machineCores} cores`,
      );
      reps.push(rep);
      await sleep(1000);
    }
    const [{ n }] = await stack.q(`SELECT count(*)::int AS n FROM sessions`);
    return { reps, checks: { sessionsStored: n } };
  } finally {
    await bare?.stop();
    await stack.destroy(ctx.redis);
  }
}
