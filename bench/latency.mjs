// Benchmark 2: overhead latency at steady rates (BENCH_LATENCY_RATES, default 200 sessions/s as in
// the issue, then 50/s, a rate this machine sustains, to separate overhead from queueing): from the 202 of
// POST /v1/sessions (as received by the client) to the start_session command arriving at the
// agent, minus the agent's own time on earlier commands of the session (apply_settings, answered
// at once). Client and probe agents live in this process, so both instants are on one clock.
// Sessions are ended through the API once active, to free their device. Anchor in the same run:
// bare BullMQ at the same rate, from add() resolving to the worker starting the job.
import { join } from 'node:path';
import { Proc, cpuMeter, sleep } from './lib/proc.mjs';
import { Stack, ROOT } from './lib/stack.mjs';
import { SessionPump } from './lib/pump.mjs';
import { ProbeFleet } from './lib/probe-agents.mjs';
import { percentiles, round } from './lib/stats.mjs';

async function anchorLatency(ctx, prefix, rate, seconds) {
  const p = new Proc(
    'anchor-latency',
    process.execPath,
    [
      join(ROOT, 'bench/anchors/bullmq.mjs'),
      'latency',
      '--redis',
      ctx.redisUrl,
      '--prefix',
      prefix,
      '--rate',
      String(rate),
      '--seconds',
      String(seconds),
      '--concurrency',
      '64',
    ],
    { logFile: join(ctx.logDir, 'anchor-latency.log') },
  );
  const r = await p.done;
  if (r.code !== 0) throw new Error(`anchor latency failed:\n${p.tail()}`);
  return JSON.parse(p.stdout.trim().split('\n').pop());
}

/**
 * Where the time goes, from the audit timestamps (taken by the writer just before each commit,
 * millisecond resolution): 202 → validating (outbox relay, BullMQ, worker pick-up), validating →
 * pushing_settings (eligibility), pushing_settings → awaiting_consent, awaiting_consent → start
 * command at the agent (the agent channel through Redis and the API). p50 and p99 of each.
 */
async function stageBreakdown(stack, accepted, probes) {
  const ids = [...accepted.keys()];
  const rows = await stack.q(
    `SELECT session_id, outcome, extract(epoch FROM occurred_at) * 1000 AS at FROM audit_events
      WHERE session_id = ANY($1::uuid[]) AND outcome IN ('validating', 'pushing_settings', 'awaiting_consent')`,
    [ids],
  );
  const t = new Map();
  for (const r of rows) {
    if (!t.has(r.session_id)) t.set(r.session_id, {});
    t.get(r.session_id)[r.outcome] = Number(r.at);
  }
  const stages = {
    acceptedToValidating: [],
    validatingToPushingSettings: [],
    pushingSettingsToAwaitingConsent: [],
    awaitingConsentToStartArrival: [],
  };
  for (const [id, at] of accepted) {
    const x = t.get(id);
    const arrived = probes.sessions.get(id)?.startArrivedAt;
    if (!x || !arrived || !x.validating || !x.pushing_settings || !x.awaiting_consent) continue;
    stages.acceptedToValidating.push(x.validating - at);
    stages.validatingToPushingSettings.push(x.pushing_settings - x.validating);
    stages.pushingSettingsToAwaitingConsent.push(x.awaiting_consent - x.pushing_settings);
    stages.awaitingConsentToStartArrival.push(arrived - x.awaiting_consent);
  }
  const out = Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, percentiles(v, [0.5, 0.99])]));
  // One session's audit timeline, ms after its 202, as an example.
  const [id, at] = [...accepted].find(([sid]) => t.has(sid)) ?? [];
  if (id) {
    const events = await stack.q(
      `SELECT seq, outcome, extract(epoch FROM occurred_at) * 1000 AS at FROM audit_events WHERE session_id = $1 ORDER BY seq`,
      [id],
    );
    out.exampleTimeline = events.map((e) => [e.outcome, round(Number(e.at) - at, 1)]);
    out.exampleTimeline.push(['start_session arrived', round(probes.sessions.get(id).startArrivedAt - at, 1)]);
  }
  return out;
}

export async function run(ctx) {
  const P = ctx.params;
  const stack = new Stack('latency', ctx, P.rcflowEnv);
  const fleet = { close() {} };
  const reps = [];
  try {
    await stack.init();
    await stack.startApi();
    await stack.startWorker();
    const world = await stack.seed();
    const probes = new ProbeFleet(stack.api.url);
    Object.assign(fleet, { close: () => probes.close() });
    ctx.log(`  latency: enrolling and connecting ${P.latencyDevices} probe agents`);
    await probes.enrol(world.enrolToken, P.latencyDevices);
    await probes.connectAll();
    const devices = await stack.addDevicesToCollection('PROBE');
    // Warm-up: one pass over the devices so their settings are applied before anything is timed.
    const warm = new SessionPump({ api: stack.api.url, key: world.operatorKey, db: stack.db, devices, ratePerSecond: 100 });
    warm.start();
    await sleep(Math.max(3, (P.latencyDevices / 100) * 1.5) * 1000);
    await warm.stop();

    for (let i = 0; i < P.reps; i++) {
      for (const rate of P.latencyRates) {
        const anchor = await anchorLatency(ctx, `${stack.prefix}anchor${i}r${rate}`, rate, Math.min(P.latencySeconds, 20));
        const accepted = new Map();
        const pump = new SessionPump({
          api: stack.api.url,
          key: world.operatorKey,
          db: stack.db,
          devices,
          ratePerSecond: rate,
          onAccepted: (id, at) => accepted.set(id, at),
        });
        const cpu = await cpuMeter({ api: stack.api.proc, worker: stack.worker, redis: ctx.redisProc }, { postgres: stack.pgCpu() });
        pump.start();
        await sleep(P.latencySeconds * 1000);
        const cpuUse = await cpu();
        await pump.stop({ drainMs: 30_000 });
        const samples = [];
        let missing = 0;
        for (const [id, at] of accepted) {
          const s = probes.sessions.get(id);
          if (!s?.startArrivedAt) {
            missing++;
            continue;
          }
          samples.push(s.startArrivedAt - at - s.agentMs);
        }
        const pct = percentiles(samples);
        const stages = await stageBreakdown(stack, accepted, probes);
        const rep = {
          rate,
          achievedRate: pump.counts.accepted / P.latencySeconds,
          samples: samples.length,
          withoutStart: missing,
          ...pct,
          anchor: { p50: anchor.p50, p95: anchor.p95, p99: anchor.p99, samples: anchor.samples },
          ratioP50: pct.p50 / anchor.p50,
          ratioP99: pct.p99 / anchor.p99,
          stagesMs: stages,
          cpu: cpuUse,
          pump: { ...pump.counts, terminal: pump.terminal },
          agentErrors: probes.errors.splice(0).slice(0, 5),
        };
        ctx.log(
          `  latency rep ${i + 1}/${P.reps} at ${rate}/s (achieved ${round(rep.achievedRate, 0)}/s, ticks without a free device ${pump.counts.noFreeDevice}): p50 ${round(pct.p50, 2)} p95 ${round(pct.p95, 2)} p99 ${round(pct.p99, 2)} ms over ${samples.length} sessions (anchor p50 ${round(anchor.p50, 2)} p99 ${round(anchor.p99, 2)} ms)`,
        );
        ctx.log(
          `    stages p50/p99 ms: ${Object.entries(stages)
            .filter(([k]) => k !== 'exampleTimeline')
            .map(([k, v]) => `${k} ${round(v.p50, 1)}/${round(v.p99, 1)}`)
            .join(', ')}`,
        );
        reps.push(rep);
        probes.sessions.clear();
      }
    }
    return { reps };
  } finally {
    fleet.close();
    await stack.destroy(ctx.redis);
  }
}
