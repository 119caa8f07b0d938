// Benchmark "schedules" (issue 11, Measure): recurring schedules on the real processes (one API,
// one or two workers, PostgreSQL, the run's private Redis), in three parts, each on its own database.
//
// 1 Registration of BENCH_SCHED_TOTAL (100,000) schedules. Through the API for a sample
//   (POST /v1/schedules, closed loop over BENCH_SCHED_API_CONNECTIONS for BENCH_SCHED_API_SECONDS:
//   requests/s and latency, what 100k would take at that rate), then the rest in bulk through SQL
//   as the API writes them (a schedules row and its timer's outbox row, in one statement; no audit
//   event: the API's `schedule.created` event is measured per schedule on the sample). Daily
//   schedules (intervalMinutes 1440) whose next occurrence is tomorrow, on BENCH_SCHED_REG_DEVICES
//   devices. Measured: the time the relays (API and worker) take to move the timers from the outbox
//   to BullMQ's delayed set, PostgreSQL's size (pg_total_relation_size of schedules, outbox,
//   schedule_occurrences, and audit_events per API-created schedule) and Redis's (INFO memory
//   used_memory before and after: the delayed jobs).
// 2 A burst: BENCH_SCHED_BURST (10,000) schedules, each on its own device, whose next occurrence
//   is the same instant (the worst case of "due in the same minute"), written through SQL with
//   their outbox timer rows BENCH_SCHED_LEAD seconds ahead; with 1 worker, then with 2
//   (BENCH_SCHED_BURST_WORKERS=1,2). Per occurrence: lag = decided_at − at (schedule_occurrences),
//   split with the BullMQ job's processedOn into at → taken by a worker → decided; the goal is every
//   occurrence decided within 60 s.
// 3 A steady rate: BENCH_SCHED_RATE (100) occurrences due per second for BENCH_SCHED_SECONDS (30),
//   each on its own schedule and device, one worker; lag = decided_at − at, goal p99 ≤ 1 s.
//
// The occurrences ask intake for real sessions as the bootstrap admin `root` (session.request over
// every collection) with loopback agents; no client settings are deployed, so those sessions are
// refused at eligibility by the worker — work that competes with the materializer, as it would.
//
// BENCH_SCHED_PROFILE=1 runs part 1's API (for the API sample only: no bulk part then) and parts 2
// and 3's workers under `node --cpu-prof` with the round-trip counter (bench/lib/count-roundtrips.cjs):
// PostgreSQL statements and Redis commands per request or per occurrence (the sessions' own jobs
// included) and the CPU profiles, in bench/results/<ts>-schedules-profile/<part>/summary.txt; the
// figures are then slowed by the profiler.
// Schedules written through SQL may be faster than the API allows (as test/e2e does); here they
// are every 60 minutes (1440 for part 1), so each timer decides one occurrence and arms the next.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { cpuMeter, sleep } from './lib/proc.mjs';
import { ROOT, Stack } from './lib/stack.mjs';
import { format, summarise } from './cpuprofile-summary.mjs';
import { closedLoop } from './lib/http.mjs';
import { distribution, nowMs, round } from './lib/stats.mjs';

const MiB = 1024 ** 2;

async function usedMemory(redis) {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)[1]);
}

const relSize = async (stack, table) => Number((await stack.q(`SELECT pg_total_relation_size($1::regclass) AS b`, [table]))[0].b);
const count = async (stack, sql, params) => (await stack.q(sql, params))[0].n;

/** n devices PREFIX-1 … by SQL (what POST /v1/devices stores), without a collection: root's grant covers every device. */
async function insertDevices(stack, n, prefix) {
  await stack.q(
    `INSERT INTO devices (hostname, os_family, os_build, agent_version, domain_joined, logged_on_user, last_heartbeat_at)
     SELECT $1 || '-' || g, 'windows', '10.0.22631', '1.2.0', true, 'CONTOSO\\carol', now() FROM generate_series(1, $2::int) g`,
    [prefix, n],
  );
}

/**
 * n schedules owned by root, schedule k (0-based) on device PREFIX-(k mod devices + 1), its next
 * occurrence at t0Ms + floor(k × stepMs), every intervalMinutes, with its timer's outbox row (as the
 * API's create writes them, audit event aside). One statement, one transaction.
 */
async function insertSchedules(stack, { n, devicePrefix, devices, t0Ms, stepMs, intervalMinutes, name }) {
  const iso = (col) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
  await stack.q(
    `WITH d AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM devices WHERE hostname LIKE $1 || '-%'),
          g AS (SELECT k, to_timestamp(0) + ($3::bigint + floor(k * $4::float8)::bigint) * interval '1 millisecond' AS at
                  FROM generate_series(0, $2::int - 1) k),
          ins AS (
            INSERT INTO schedules (name, owner_id, spec, device_ids, type, access, reason, state, last_planned_at, next_at)
            SELECT $6 || ' ' || g.k, (SELECT id FROM principals WHERE name = 'root'),
                   jsonb_build_object('intervalMinutes', $5::float8, 'startsAt', ${iso('g.at')}, 'windowMinutes', 30, 'missedPolicy', 'skip'),
                   ARRAY[d.id], 'remote-control', 'full', 'bench', 'active', now(), g.at
              FROM g JOIN d ON d.k = g.k % $7::int
            RETURNING id, next_at)
     INSERT INTO outbox (queue, job_name, job_id, payload, run_at)
     SELECT 'schedules', 'schedule.occurrence', 'occurrence.' || id || '.' || (extract(epoch FROM next_at) * 1000)::bigint,
            jsonb_build_object('scheduleId', id, 'at', ${iso('next_at')}), next_at
       FROM ins`,
    [devicePrefix, n, t0Ms, stepMs, intervalMinutes, name, devices],
  );
}

/** Waits until the outbox is empty and `expected` timers are delayed in BullMQ; returns ms, or null at the deadline. */
async function waitRelayed(stack, redis, expected, t0, deadlineMs) {
  const delayedKey = `${stack.prefix}:schedules:delayed`;
  for (;;) {
    const [outbox, delayed] = [await count(stack, `SELECT count(*)::int AS n FROM outbox`), await redis.zcard(delayedKey)];
    if (outbox === 0 && delayed >= expected) return nowMs() - t0;
    if (nowMs() > deadlineMs) return null;
    await sleep(100);
  }
}

/** Where each occurrence's time went: its timer job's processedOn and finishedOn (BullMQ keeps completed jobs). */
async function jobTimes(stack, redis, rows) {
  const out = new Map();
  for (let i = 0; i < rows.length; i += 1000) {
    const chunk = rows.slice(i, i + 1000);
    const p = redis.pipeline();
    for (const r of chunk) p.hmget(`${stack.prefix}:schedules:occurrence.${r.schedule_id}.${r.at_ms}`, 'processedOn', 'finishedOn');
    const res = await p.exec();
    chunk.forEach((r, j) => {
      const [taken, finished] = res[j][1] ?? [];
      out.set(r.schedule_id, { taken: taken ? Number(taken) : null, finished: finished ? Number(finished) : null });
    });
  }
  return out;
}

/**
 * What rcflow's PostgreSQL backends on this database are doing, every 250 ms: how many are active,
 * idle in a transaction, or waiting (and on what), to see whether the pools, locks or the server's
 * CPU hold the occurrences up.
 */
function activitySampler(stack) {
  const samples = [];
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      const rows = await stack
        .q(
          `SELECT state, coalesce(wait_event_type || ':' || wait_event, '-') AS wait, count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND application_name <> 'rcflow-bench-driver' GROUP BY 1, 2`,
        )
        .catch(() => []);
      samples.push(rows);
      await sleep(250);
    }
  })();
  return async () => {
    stop = true;
    await loop;
    const mean = {};
    for (const rows of samples) for (const r of rows) mean[`${r.state} ${r.wait}`] = (mean[`${r.state} ${r.wait}`] ?? 0) + r.n;
    return Object.fromEntries(
      Object.entries(mean)
        .map(([k, v]) => [k, round(v / Math.max(1, samples.length), 1)])
        .sort((a, b) => b[1] - a[1]),
    );
  };
}

/** Waits for `n` occurrence rows (or the deadline), sampling how many were decided each second. */
async function waitDecided(stack, n, deadlineMs) {
  const timeline = [];
  let decided = 0;
  let next = Date.now();
  while (decided < n && Date.now() < deadlineMs) {
    decided = await count(stack, `SELECT count(*)::int AS n FROM schedule_occurrences`);
    if (Date.now() >= next) {
      timeline.push({ t: new Date().toISOString().slice(11, 19), decided, load1: round(loadavg()[0], 2) });
      next += 1000;
    }
    await sleep(200);
  }
  return { decided, timeline };
}

/**
 * The lag of each decided occurrence (decided_at is the start of the transaction that records it),
 * split at: a worker took its timer job (processedOn) → intake was asked (the session's created_at,
 * taken before intake's batched statement) → the occurrence recorded (decided_at) → the job
 * finished (finishedOn: the record's commit, the next timer's outbox row, BullMQ's completion).
 */
async function lags(stack, redis) {
  const rows = await stack.q(
    `SELECT o.schedule_id, (extract(epoch FROM o.at) * 1000)::bigint AS at_ms, extract(epoch FROM o.decided_at) * 1000 AS decided_ms,
            o.outcome, (SELECT extract(epoch FROM min(s.created_at)) * 1000 FROM sessions s
                         WHERE s.schedule_id = o.schedule_id AND s.occurrence_at = o.at) AS asked_ms
       FROM schedule_occurrences o ORDER BY o.at, o.decided_at`,
  );
  const jobs = await jobTimes(stack, redis, rows);
  const d = { lag: [], dueToTaken: [], takenToAsked: [], askedToDecided: [], decidedToFinished: [] };
  const outcomes = {};
  for (const r of rows) {
    const at = Number(r.at_ms);
    const dec = Number(r.decided_ms);
    const asked = r.asked_ms === null ? null : Number(r.asked_ms);
    d.lag.push(dec - at);
    const j = jobs.get(r.schedule_id);
    if (j?.taken) {
      d.dueToTaken.push(j.taken - at);
      if (asked !== null) d.takenToAsked.push(asked - j.taken);
    }
    if (asked !== null) d.askedToDecided.push(dec - asked);
    if (j?.finished) d.decidedToFinished.push(j.finished - dec);
    outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
  }
  return {
    lagMs: distribution(d.lag),
    stagesMs: {
      dueToTaken: distribution(d.dueToTaken),
      takenToIntakeAsked: distribution(d.takenToAsked),
      intakeAskedToDecided: distribution(d.askedToDecided),
      decidedToJobFinished: distribution(d.decidedToFinished),
    },
    outcomes,
    rows,
  };
}

async function sessionStates(stack) {
  return Object.fromEntries(
    (await stack.q(`SELECT state, count(*)::int AS n FROM sessions GROUP BY state ORDER BY 2 DESC`)).map((r) => [r.state, r.n]),
  );
}

/** Environment and node arguments that profile one process into dir (CPU profile and round-trip counts). */
function profiled(dir) {
  mkdirSync(dir, { recursive: true });
  return [
    { BENCH_COUNT_FILE: join(dir, 'counts.json') },
    ['--cpu-prof', '--cpu-prof-dir', dir, '--require', join(ROOT, 'bench/lib/count-roundtrips.cjs')],
  ];
}

/** One API and `workers` workers; with profileDir, the API (profile: 'api') or the workers ('workers') are profiled. */
async function startStack(ctx, tag, workers, profileDir = null, profile = 'workers') {
  const stack = new Stack(tag, ctx, { AGENT_TRANSPORT: 'loopback', PRESENCE_GRACE_SECONDS: '86400', ...ctx.params.rcflowEnv });
  await stack.init();
  await stack.startApi(...(profileDir && profile === 'api' ? profiled(join(profileDir, 'api')) : []));
  const ws = [];
  for (let i = 0; i < workers; i++)
    ws.push(await stack.startWorker(...(profileDir && profile === 'workers' ? profiled(join(profileDir, `worker${i + 1}`)) : [])));
  return { stack, workers: ws };
}

/** After a profiled run: stops the processes (profiles and counts are written on exit) and summarises them per occurrence. */
async function writeProfile(ctx, stack, profileDir, names, n, what) {
  await stack.stopProcs('SIGTERM');
  const texts = [];
  const out = {};
  for (const name of names) {
    const dir = join(profileDir, name);
    const end = JSON.parse(readFileSync(join(dir, 'counts.json'), 'utf8'));
    const start = JSON.parse(readFileSync(join(dir, 'counts.json.start'), 'utf8'));
    const top = (m0, m1) =>
      Object.entries(m1)
        .map(([k, v]) => [k, v - (m0[k] ?? 0)])
        .filter(([, v]) => v > 0)
        .sort((x, y) => y[1] - x[1])
        .slice(0, 25)
        .map(([k, v]) => `${round(v / n, 2)} × ${k}`);
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    const prof = file ? summarise(JSON.parse(readFileSync(join(dir, file), 'utf8')), 30) : null;
    const pgPer = round((end.pgTotal - start.pgTotal) / n, 2);
    const redisPer = round((end.redisTotal - start.redisTotal) / n, 2);
    texts.push(
      [
        `${name}: per ${what} (${n}) ${pgPer} PostgreSQL statements, ${redisPer} Redis commands`,
        `  statements:\n    ${top(start.pg, end.pg).join('\n    ')}`,
        `  redis:\n    ${top(start.redis, end.redis).join('\n    ')}`,
        prof ? format(prof, `${name} cpu profile (whole process life) ${file}`) : 'no .cpuprofile written',
      ].join('\n'),
    );
    out[name] = { pgPer, redisPer, places: prof?.places, functions: prof?.functions };
  }
  writeFileSync(join(profileDir, 'summary.txt'), `${texts.join('\n\n')}\n`);
  ctx.log(`  schedules profile written to ${profileDir}/summary.txt`);
  return { dir: profileDir, workers: out };
}

// ---------------------------------------------------------------------------------------------
// 1 registration of 100k

async function registration(ctx) {
  const P = ctx.params;
  const profileDir = P.schedProfile ? join(ctx.resultsDir, `${ctx.ts}-schedules-profile`, 'schedreg') : null;
  const { stack, workers } = await startStack(ctx, 'schedreg', 1, profileDir, 'api');
  try {
    const devPrefix = 'REG';
    await insertDevices(stack, P.schedRegDevices, devPrefix);
    const deviceIds = (await stack.q(`SELECT id FROM devices WHERE hostname LIKE 'REG-%' ORDER BY id`)).map((r) => r.id);
    await sleep(1500);
    const redis0 = await usedMemory(ctx.redis);
    const audit0 = await relSize(stack, 'audit_events');
    // The first occurrences: from 08:00 UTC after the next midnight (8 to 32 hours ahead), spread over that day.
    const base = Math.ceil(Date.now() / 86_400_000) * 86_400_000 + 8 * 3_600_000;

    // Through the API: a sample.
    if (profileDir) stack.api.proc.child.kill('SIGUSR2'); // round trips counted from here
    let k = 0;
    const cpuApi = await cpuMeter({ api: stack.api.proc, worker: workers[0], redis: ctx.redisProc }, { postgres: stack.pgCpu() });
    const r = await closedLoop({
      base: stack.api.url,
      method: 'POST',
      path: '/v1/schedules',
      connections: P.schedApiConnections,
      seconds: P.schedApiSeconds,
      expect: 201,
      headers: { authorization: `Bearer ${stack.adminKey}` },
      next: () => {
        const i = k++;
        return {
          body: JSON.stringify({
            name: `api ${i}`,
            timing: { intervalMinutes: 1440, startsAt: new Date(base + (i % 86_400) * 1000).toISOString() },
            deviceIds: [deviceIds[i % deviceIds.length]],
            type: 'remote-control',
            access: 'full',
            reason: 'bench',
          }),
        };
      },
    });
    const apiCpu = await cpuApi();
    if (r.errors || Object.keys(r.byStatus).some((s) => s !== '201'))
      throw new Error(`POST /v1/schedules: ${JSON.stringify(r.byStatus)}, ${r.errors} errors; first: ${JSON.stringify(r.firstUnexpected)}`);
    const apiDone = nowMs();
    const apiRelayMs = await waitRelayed(stack, ctx.redis, r.ok, apiDone, apiDone + 120_000);
    const nApi = await count(stack, `SELECT count(*)::int AS n FROM schedules`);
    const auditPerSchedule = ((await relSize(stack, 'audit_events')) - audit0) / nApi;
    const api = {
      schedules: nApi,
      requestsPerSecond: round(r.rps, 1),
      latencyMs: distribution(r.latencies),
      connections: P.schedApiConnections,
      seconds: round(r.elapsed, 1),
      cpu: apiCpu,
      relayAfterLastAnswerMs: round(apiRelayMs, 0),
      secondsFor100kAtThisRate: round(100_000 / r.rps, 0),
      auditBytesPerSchedule: round(auditPerSchedule, 0),
    };
    ctx.log(
      `  schedules 1: API ${nApi} schedules in ${api.seconds} s = ${api.requestsPerSecond} req/s (p50 ${round(api.latencyMs.p50, 1)} ms, p99 ${round(api.latencyMs.p99, 1)} ms; api ${apiCpu.api} cores, postgres ${apiCpu.postgres}); 100k would take ${api.secondsFor100kAtThisRate} s`,
    );

    // Profiled: the API's profile and round trips cover the sample (and start-up); no bulk part.
    if (profileDir)
      return { api, profiled: true, profile: await writeProfile(ctx, stack, profileDir, ['api'], nApi, 'POST /v1/schedules') };

    // The rest in bulk.
    const bulkN = Math.max(0, P.schedTotal - nApi);
    const t0 = nowMs();
    await insertSchedules(stack, {
      n: bulkN,
      devicePrefix: devPrefix,
      devices: P.schedRegDevices,
      t0Ms: base + 500, // half a second off the API's: no two timers of one device and time
      stepMs: 86_400_000 / Math.max(1, bulkN), // spread over the day
      intervalMinutes: 1440,
      name: 'bulk',
    });
    const insertMs = nowMs() - t0;
    const outboxPeak = await relSize(stack, 'outbox');
    const cpuRelay = await cpuMeter({ api: stack.api.proc, worker: workers[0], redis: ctx.redisProc }, { postgres: stack.pgCpu() });
    const t1 = nowMs();
    const relayMs = await waitRelayed(stack, ctx.redis, nApi + bulkN, t1, t1 + 600_000);
    const relayCpu = await cpuRelay();
    if (relayMs === null) throw new Error('the relays had not moved every timer to Redis after 600 s');
    const total = nApi + bulkN;
    await stack.q('VACUUM ANALYZE outbox');
    const redis1 = await usedMemory(ctx.redis);
    const sizes = {
      schedules: await relSize(stack, 'schedules'),
      outboxWithRows: outboxPeak,
      outboxAfterRelayVacuumed: await relSize(stack, 'outbox'),
      scheduleOccurrences: await relSize(stack, 'schedule_occurrences'),
    };
    const bulk = {
      schedules: bulkN,
      insertSeconds: round(insertMs / 1000, 2),
      insertPerSecond: round(bulkN / (insertMs / 1000), 0),
      relaySeconds: round(relayMs / 1000, 2),
      relayPerSecond: round(total / (relayMs / 1000), 0),
      relayCpu,
    };
    const memory = {
      total,
      delayedInRedis: await ctx.redis.zcard(`${stack.prefix}:schedules:delayed`),
      postgresBytes: sizes,
      postgresMiB: Object.fromEntries(Object.entries(sizes).map(([k2, v]) => [k2, round(v / MiB, 1)])),
      schedulesBytesPerRow: round(sizes.schedules / total, 0),
      outboxBytesPerRow: round(outboxPeak / bulkN, 0),
      auditMiBFor100kThroughApi: round((auditPerSchedule * 100_000) / MiB, 1),
      redisUsedMemoryBefore: redis0,
      redisUsedMemoryAfter: redis1,
      redisMiB: round((redis1 - redis0) / MiB, 1),
      redisBytesPerTimer: round((redis1 - redis0) / total, 0),
    };
    ctx.log(
      `  schedules 1: bulk ${bulkN} schedules + timers by SQL in ${bulk.insertSeconds} s; relays moved ${total} timers to Redis in ${bulk.relaySeconds} s (${bulk.relayPerSecond}/s; api ${relayCpu.api}, worker ${relayCpu.worker}, postgres ${relayCpu.postgres}, redis ${relayCpu.redis} cores)`,
    );
    ctx.log(
      `  schedules 1: PostgreSQL schedules ${memory.postgresMiB.schedules} MiB (${memory.schedulesBytesPerRow} B/row), outbox with the rows ${memory.postgresMiB.outboxWithRows} MiB; audit ${api.auditBytesPerSchedule} B per API-created schedule; Redis +${memory.redisMiB} MiB for ${memory.delayedInRedis} delayed timers (${memory.redisBytesPerTimer} B each)`,
    );
    return { api, bulk, memory };
  } finally {
    await stack.destroy(ctx.redis);
  }
}

// ---------------------------------------------------------------------------------------------
// 2 and 3: occurrences falling due

/**
 * n schedules, k-th due at t0 + k × stepMs (t0 BENCH_SCHED_LEAD s ahead, on a whole second), each on
 * its own device; waits for every occurrence to be decided (or the deadline) and reports the lags.
 */
async function dueRun(ctx, { tag, workers: nWorkers, n, stepMs, label }) {
  const P = ctx.params;
  const profileDir = P.schedProfile ? join(ctx.resultsDir, `${ctx.ts}-schedules-profile`, tag) : null;
  const { stack, workers } = await startStack(ctx, tag, nWorkers, profileDir);
  try {
    await insertDevices(stack, n, 'DUE');
    const t0 = Math.ceil((Date.now() + P.schedLead * 1000) / 1000) * 1000;
    const tIns = nowMs();
    await insertSchedules(stack, { n, devicePrefix: 'DUE', devices: n, t0Ms: t0, stepMs, intervalMinutes: 60, name: label });
    const insertMs = nowMs() - tIns;
    const relayMs = await waitRelayed(stack, ctx.redis, n, tIns, t0);
    if (relayMs === null) ctx.log(`  schedules ${label}: WARNING the timers were not all in Redis by the first due time`);
    const lastDue = t0 + Math.floor((n - 1) * stepMs);
    await sleep(Math.max(0, t0 - 1000 - Date.now()));
    const loadAtStart = loadavg().map((x) => round(x, 2));
    if (profileDir) for (const w of workers) w.child.kill('SIGUSR2'); // round trips counted from here
    const procs = { api: stack.api.proc, redis: ctx.redisProc };
    workers.forEach((w, i) => (procs[`worker${i + 1}`] = w));
    const cpu = await cpuMeter(procs, { postgres: stack.pgCpu() });
    const activity = activitySampler(stack);
    const { decided, timeline } = await waitDecided(stack, n, lastDue + P.schedTimeout * 1000);
    const cpuUsed = await cpu();
    const backends = await activity();
    const l = await lags(stack, ctx.redis);
    const lastDecidedAt = Math.max(...l.rows.map((r) => Number(r.decided_ms)));
    const res = {
      workers: nWorkers,
      occurrences: n,
      offeredPerSecond: stepMs > 0 ? round(1000 / stepMs, 1) : null,
      dueSpanSeconds: round((lastDue - t0) / 1000, 2),
      decided,
      insertSeconds: round(insertMs / 1000, 2),
      relaySeconds: relayMs === null ? null : round(relayMs / 1000, 2),
      lagMs: l.lagMs,
      stagesMs: l.stagesMs,
      firstDueToLastDecidedSeconds: round((lastDecidedAt - t0) / 1000, 2),
      decidedPerSecond: round(decided / Math.max(0.001, (lastDecidedAt - t0) / 1000), 0),
      outcomes: l.outcomes,
      sessions: await sessionStates(stack),
      cpu: cpuUsed,
      postgresBackendsMean: backends,
      loadAtStart,
      loadAtEnd: loadavg().map((x) => round(x, 2)),
      timeline,
    };
    ctx.log(
      `  schedules ${label} (${nWorkers} worker${nWorkers > 1 ? 's' : ''}): ${decided}/${n} decided; lag p50 ${round(l.lagMs.p50 / 1000, 2)} s, p99 ${round(l.lagMs.p99 / 1000, 2)} s, max ${round(l.lagMs.max / 1000, 2)} s (p50 of due → taken ${round(l.stagesMs.dueToTaken.p50, 0)} ms, → intake asked ${round(l.stagesMs.takenToIntakeAsked.p50, 0)} ms, → decided ${round(l.stagesMs.intakeAskedToDecided.p50, 0)} ms, → job finished ${round(l.stagesMs.decidedToJobFinished.p50, 0)} ms); ${res.decidedPerSecond} decided/s; cpu ${JSON.stringify(cpuUsed)}`,
    );
    ctx.log(`  schedules ${label}: rcflow's PostgreSQL backends (mean over the run) ${JSON.stringify(backends)}`);
    if (profileDir)
      res.profile = await writeProfile(
        ctx,
        stack,
        profileDir,
        workers.map((_, i) => `worker${i + 1}`),
        decided,
        "occurrence (the sessions' own jobs included)",
      );
    res.profiled = Boolean(profileDir);
    return res;
  } finally {
    await stack.destroy(ctx.redis);
  }
}

export async function run(ctx) {
  const P = ctx.params;
  const out = {};
  if (P.schedParts.includes('register')) out.registration = await registration(ctx);
  if (P.schedParts.includes('burst')) {
    out.burst = [];
    for (const w of P.schedBurstWorkers) {
      const r = await dueRun(ctx, { tag: `schedb${w}`, workers: w, n: P.schedBurst, stepMs: 0, label: '2 burst' });
      r.allWithin60s = r.decided === P.schedBurst && r.lagMs.max <= 60_000;
      out.burst.push(r);
    }
  }
  if (P.schedParts.includes('rate')) {
    out.rate = await dueRun(ctx, {
      tag: 'schedrate',
      workers: P.schedRateWorkers,
      n: Math.round(P.schedRate * P.schedSeconds),
      stepMs: 1000 / P.schedRate,
      label: '3 rate',
    });
    out.rate.p99WithinOneSecond = out.rate.lagMs.p99 <= 1000;
  }
  return out;
}
