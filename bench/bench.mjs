// Runs the benchmarks of issue 4 (bench/README in BENCHMARKS.md), each BENCH_REPS times with its
// anchor in the same run, writes bench/results/<timestamp>.json and prints a summary table.
// Started by bench/run.sh (npm run bench). Parameters (environment):
//   BENCH_QUICK=1            short runs (10 s end to end, 10 s latency, 5 s intake and hooks, 10 s write-back, 35 s fan-in hold)
//   BENCH_ONLY=e2e,latency,intake,hooks,writeback,fanin,audit,reports,profile,access,schedules,console   a subset (default: all)
//   BENCH_REPS=3             repetitions of every figure
//   BENCH_E2E_SECONDS=60     sustained window of benchmark 1 (after BENCH_E2E_WARMUP=10 s)
//   BENCH_E2E_DEVICES=500    simulated agents (devices) the sessions cycle over
//   BENCH_E2E_POSTERS=16     parallel POST loops of the closed-loop load
//   BENCH_ANCHOR_JOBS=100000 no-op jobs the bare BullMQ worker drains
//   BENCH_LATENCY_RATES=200,50  sessions/s of benchmark 2, each for BENCH_LATENCY_SECONDS=30 over BENCH_LATENCY_DEVICES=500
//   BENCH_INTAKE_SECONDS=10, BENCH_INTAKE_CONNECTIONS=32
//   BENCH_HOOKS_SECONDS=10, BENCH_HOOKS_CONNECTIONS=32, BENCH_HOOKS_DEVICES=100, BENCH_HOOKS_PROFILE=1 (API under --cpu-prof)
//   BENCH_WRITEBACK_RATE=50, BENCH_WRITEBACK_SECONDS=20 (deliveries/s and s, open loop), BENCH_WRITEBACK_WARMUP=2 (s at
//                            the same rate, before the reps), BENCH_WRITEBACK_DRAIN=60 (s to wait for the last notes)
//   BENCH_FANIN_AGENTS=15000, BENCH_FANIN_PER_PROCESS=5000, BENCH_FANIN_HOLD=70 (s)
//   BENCH_PROFILE_SECONDS=20, BENCH_PROFILE_RATE=0 (0: closed loop as benchmark 1; else sessions/s)
//   BENCH_AUDIT_ROWS=1000000 (the figure is 10000000; needs psql on the PATH), BENCH_AUDIT_QUERIES=200
//   BENCH_CONSOLE_SESSIONS=100000, BENCH_CONSOLE_LOADS=20 (console first page load in headless Chromium, bench/console.mjs)
//   BENCH_ACCESS_DEVICES=10000, BENCH_ACCESS_PRINCIPALS=1000, BENCH_ACCESS_QUERIES=200 (access review, bench/access.mjs)
//   BENCH_SCHED_PARTS=register,burst,rate  the parts of benchmark 7 (schedules, issue 11; once each, not BENCH_REPS):
//     BENCH_SCHED_TOTAL=100000     schedules registered (part 1): BENCH_SCHED_API_SECONDS=10 of POST /v1/schedules over
//                                  BENCH_SCHED_API_CONNECTIONS=16, the rest in bulk by SQL with their outbox timers,
//                                  on BENCH_SCHED_REG_DEVICES=100 devices
//     BENCH_SCHED_BURST=10000      occurrences due at the same instant (part 2), each on its own schedule and device,
//                                  with BENCH_SCHED_BURST_WORKERS=1,2 worker processes (one run each)
//     BENCH_SCHED_RATE=100, BENCH_SCHED_SECONDS=30   occurrences due per second, and for how long (part 3), with
//                                  BENCH_SCHED_RATE_WORKERS=1 worker(s)
//     BENCH_SCHED_LEAD=20          s between writing parts 2/3's schedules and their first due time (the relay's head start)
//     BENCH_SCHED_TIMEOUT=180      s after the last due time to wait for the last occurrence to be decided
//     BENCH_SCHED_PROFILE=1        part 1's API (sample only) and parts 2-3's workers under --cpu-prof, with statement
//                                  counts (slower; marked so)
//   BENCH_KEEP_LOGS=1        keep the processes' logs (kept anyway when a benchmark fails)
//   BENCH_KEEP_DB=1          keep each benchmark's database for inspection (not dropped at the end)
//   BENCH_RCFLOW_ENV="WORKER_CONCURRENCY=64 DB_POOL_SIZE=20"   extra environment for rcflow's processes
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import IORedis from 'ioredis';
import { stopAll } from './lib/proc.mjs';
import { PG_ADMIN_URL, ROOT, adminQuery, startRedis } from './lib/stack.mjs';
import { round, summary } from './lib/stats.mjs';

const env = process.env;
const quick = env.BENCH_QUICK === '1';
const num = (name, full, short = full) => Number(env[name] ?? (quick ? short : full));
const params = {
  quick,
  reps: num('BENCH_REPS', 3),
  e2eSeconds: num('BENCH_E2E_SECONDS', 60, 10),
  e2eWarmup: num('BENCH_E2E_WARMUP', 10, 3),
  e2eDevices: num('BENCH_E2E_DEVICES', 500),
  e2ePosters: num('BENCH_E2E_POSTERS', 16),
  anchorJobs: num('BENCH_ANCHOR_JOBS', 100_000, 30_000),
  latencyRates: (env.BENCH_LATENCY_RATES ?? '200,50').split(',').map(Number),
  latencySeconds: num('BENCH_LATENCY_SECONDS', 30, 10),
  latencyDevices: num('BENCH_LATENCY_DEVICES', 500),
  intakeSeconds: num('BENCH_INTAKE_SECONDS', 10, 5),
  intakeConnections: num('BENCH_INTAKE_CONNECTIONS', 32),
  hooksSeconds: num('BENCH_HOOKS_SECONDS', 10, 5),
  hooksConnections: num('BENCH_HOOKS_CONNECTIONS', 32),
  hooksDevices: num('BENCH_HOOKS_DEVICES', 100),
  hooksProfile: env.BENCH_HOOKS_PROFILE === '1',
  writebackRate: num('BENCH_WRITEBACK_RATE', 50),
  writebackSeconds: num('BENCH_WRITEBACK_SECONDS', 20, 10),
  writebackWarmup: num('BENCH_WRITEBACK_WARMUP', 2, 1),
  writebackDrain: num('BENCH_WRITEBACK_DRAIN', 60),
  faninAgents: num('BENCH_FANIN_AGENTS', 15_000),
  faninPerProcess: num('BENCH_FANIN_PER_PROCESS', 5000),
  faninHold: num('BENCH_FANIN_HOLD', 70, 35),
  profileSeconds: num('BENCH_PROFILE_SECONDS', 20, 10),
  profileRate: num('BENCH_PROFILE_RATE', 0),
  auditRows: num('BENCH_AUDIT_ROWS', 1_000_000, 200_000),
  auditQueries: num('BENCH_AUDIT_QUERIES', 200, 50),
  schedParts: (env.BENCH_SCHED_PARTS ?? 'register,burst,rate').split(',').map((s) => s.trim()),
  schedTotal: num('BENCH_SCHED_TOTAL', 100_000, 20_000),
  schedApiSeconds: num('BENCH_SCHED_API_SECONDS', 10, 5),
  schedApiConnections: num('BENCH_SCHED_API_CONNECTIONS', 16),
  schedRegDevices: num('BENCH_SCHED_REG_DEVICES', 100),
  schedBurst: num('BENCH_SCHED_BURST', 10_000, 2000),
  schedBurstWorkers: (env.BENCH_SCHED_BURST_WORKERS ?? '1,2').split(',').map(Number),
  schedRate: num('BENCH_SCHED_RATE', 100),
  schedSeconds: num('BENCH_SCHED_SECONDS', 30, 10),
  schedRateWorkers: num('BENCH_SCHED_RATE_WORKERS', 1),
  schedLead: num('BENCH_SCHED_LEAD', 20, 10),
  schedTimeout: num('BENCH_SCHED_TIMEOUT', 180, 60),
  schedProfile: env.BENCH_SCHED_PROFILE === '1',
  rcflowEnv: Object.fromEntries(
    (env.BENCH_RCFLOW_ENV ?? '')
      .split(/\s+/)
      .filter(Boolean)
      .map((kv) => kv.split(/=(.*)/s).slice(0, 2)),
  ),
};
const ALL = ['e2e', 'latency', 'intake', 'hooks', 'writeback', 'fanin', 'audit', 'reports', 'profile', 'access', 'schedules', 'console'];
const only = (env.BENCH_ONLY ?? ALL.join(','))
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);

const sh = (cmd, args) => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
};

/**
 * Copies dist/ to bench/.snapshot-<ts>/dist (inside the repository, so node_modules resolve) and
 * runs everything from there: others rebuild dist/ while they work. Retries while a build is
 * under way (dist/ missing or incomplete).
 */
async function snapshotDist(ts) {
  const target = join(ROOT, `bench/.snapshot-${ts}`);
  const needed = [
    'apps/api/src/main.js',
    'apps/api/src/cli.js',
    'apps/worker/src/main.js',
    'apps/agent/src/simulator.js',
    'libs/audit/src/index.js',
    ...(only.includes('writeback') ? ['apps/fake-vendor/src/fake-vendor.js'] : []),
  ];
  for (let attempt = 0; attempt < 30; attempt++) {
    rmSync(target, { recursive: true, force: true });
    try {
      cpSync(join(ROOT, 'dist'), join(target, 'dist'), { recursive: true, preserveTimestamps: true });
      if (needed.every((f) => existsSync(join(target, 'dist', f)))) return join(target, 'dist');
    } catch {
      /* a build replaced dist/ while we copied */
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
  throw new Error('dist/ stayed missing or incomplete for a minute; run `npm run build` and retry');
}

/** Which build was measured: dist/ changes as the team works, so the results name it. */
function codeUnderTest(distDir) {
  const files = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.js')) files.push(p);
    }
  };
  walk(distDir);
  const h = createHash('sha256');
  for (const f of files.sort()) h.update(f.slice(distDir.length)).update(readFileSync(f));
  return {
    distBuiltAt: statSync(join(distDir, 'apps/api/src/main.js')).mtime.toISOString(),
    distJsFiles: files.length,
    distSha256: h.digest('hex').slice(0, 16),
  };
}

function machine() {
  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  return {
    nproc: cpus().length,
    cpuModel: cpus()[0]?.model,
    memTotalGiB: round(totalmem() / 1024 ** 3, 1),
    memAvailableGiB: round(Number(/MemAvailable:\s+(\d+)/.exec(meminfo)?.[1] ?? 0) / 1024 ** 2, 1),
    kernel: sh('uname', ['-r']),
    node: process.version,
    redis: sh('redis-server', ['--version']),
    postgres: null,
    bullmq: JSON.parse(readFileSync(join(ROOT, 'node_modules/bullmq/package.json'), 'utf8')).version,
    nest: JSON.parse(readFileSync(join(ROOT, 'node_modules/@nestjs/core/package.json'), 'utf8')).version,
    ulimitOpenFiles: sh('bash', ['-c', 'ulimit -n']),
    loadavgAtStart: loadavg().map((x) => round(x, 2)),
  };
}

const GOALS = {
  e2e: '>= 2000 sessions/s and >= 0.07 of raw drain',
  latencyP50: '<= 10 ms',
  latencyP95: '(none)',
  latencyP99: '<= 50 ms',
  intake: '>= 0.4 of bare',
  hooks: '>= 0.4 of bare',
  hooksLatency: '(report)',
  writeback: '(report)',
  faninAgents: '>= 15000, none falsely offline',
  faninRss: '< 1024 MiB',
  faninPerConn: '(report; extrapolate to 100k)',
  auditQuery: 'p95 <= 50 ms (at 10M rows)',
  auditExport: '>= 100k rows/s, flat memory (streamed export)',
  auditExportRss: 'flat (independent of rows)',
  auditVerify: '<= 60 s at 10M rows',
  auditVerifyRss: 'flat (independent of rows)',
  accessDevice: 'p95 <= 500 ms (10k devices, 1k principals)',
  accessPrincipal: '>= 5000 devices/s (10k devices, 1k principals)',
  schedRegister: '100k registered (report time and memory)',
  schedBurst: 'all 10k decided within 60 s of their due time',
  schedRate: 'p99 <= 1000 ms at 100 due/s',
};

function tableRows(results) {
  const rows = [];
  const add = (figure, unit, reps, value, anchor, ratio, goal, digits = 1) => {
    const v = summary(reps.map(value));
    const a = anchor ? summary(reps.map(anchor)) : null;
    const r = ratio ? summary(reps.map(ratio)) : null;
    rows.push({
      figure,
      unit,
      median: round(v.median, digits),
      min: round(v.min, digits),
      max: round(v.max, digits),
      n: v.n,
      anchor: a ? round(a.median, digits) : null,
      ratio: r ? round(r.median, 4) : null,
      goal,
    });
  };
  const e = results.e2e?.reps;
  if (e)
    add(
      '1 end-to-end throughput (anchor: bare BullMQ drain, jobs/s)',
      'sessions/s',
      e,
      (r) => r.sessionsPerSecond,
      (r) => r.anchorJobsPerSecond,
      (r) => r.ratio,
      GOALS.e2e,
    );
  for (const rate of [...new Set((results.latency?.reps ?? []).map((r) => r.rate))]) {
    const l = results.latency.reps.filter((r) => r.rate === rate);
    const at = `at ${rate}/s (achieved ${round(summary(l.map((r) => r.achievedRate)).median, 0)}/s)`;
    add(
      `2 overhead latency p50 ${at} (anchor: bare BullMQ add→start)`,
      'ms',
      l,
      (r) => r.p50,
      (r) => r.anchor.p50,
      (r) => r.p50 / r.anchor.p50,
      GOALS.latencyP50,
      2,
    );
    add(
      `2 overhead latency p95 ${at}`,
      'ms',
      l,
      (r) => r.p95,
      (r) => r.anchor.p95,
      (r) => r.p95 / r.anchor.p95,
      GOALS.latencyP95,
      2,
    );
    add(
      `2 overhead latency p99 ${at}`,
      'ms',
      l,
      (r) => r.p99,
      (r) => r.anchor.p99,
      (r) => r.p99 / r.anchor.p99,
      GOALS.latencyP99,
      2,
    );
  }
  const i = results.intake?.reps;
  if (i)
    add(
      '3 intake POST /v1/sessions (anchor: bare NestJS route)',
      'req/s',
      i,
      (r) => r.requestsPerSecond,
      (r) => r.anchorRequestsPerSecond,
      (r) => r.ratio,
      GOALS.intake,
      0,
    );
  const h = results.hooks?.reps;
  if (h) {
    const profiled = h.some((r) => r.profiled) ? ' UNDER THE PROFILER' : '';
    add(
      `3b signed webhook POST /v1/hooks/:id, Jira${profiled} (anchor: bare NestJS route)`,
      'req/s',
      h,
      (r) => r.requestsPerSecond,
      (r) => r.anchorRequestsPerSecond,
      (r) => r.ratio,
      GOALS.hooks,
      0,
    );
    add(
      '3b signed webhook latency p50 (anchor: bare)',
      'ms',
      h,
      (r) => r.latencyMs.p50,
      (r) => r.anchorLatencyMs.p50,
      (r) => r.latencyMs.p50 / r.anchorLatencyMs.p50,
      GOALS.hooksLatency,
      2,
    );
    add(
      '3b signed webhook latency p99 (anchor: bare)',
      'ms',
      h,
      (r) => r.latencyMs.p99,
      (r) => r.anchorLatencyMs.p99,
      (r) => r.latencyMs.p99 / r.anchorLatencyMs.p99,
      GOALS.hooksLatency,
      2,
    );
  }
  const w = results.writeback?.reps;
  if (w) {
    const at = `at ${w[0].offeredRate}/s (achieved ${round(summary(w.map((r) => r.achievedRate)).median, 1)}/s)`;
    for (const q of ['p50', 'p95', 'p99', 'max'])
      add(`3c delivery → first write-back ${q} ${at}`, 'ms', w, (r) => r.firstNoteMs[q], null, null, GOALS.writeback, 1);
    for (const q of ['p50', 'p99']) {
      add(`3c   of which delivery → session active ${q}`, 'ms', w, (r) => r.deliveryToActiveMs[q], null, null, GOALS.writeback, 1);
      add(`3c   of which active → note at the fake ${q}`, 'ms', w, (r) => r.activeToNoteMs[q], null, null, GOALS.writeback, 1);
    }
    const st = (k) => (r) => r.stagesMs[k].p50;
    add(
      '3c     active → write-back job in Redis (outbox relay) p50',
      'ms',
      w,
      st('activeToWritebackQueued'),
      null,
      null,
      GOALS.writeback,
      1,
    );
    add('3c     write-back job in Redis → taken by the worker p50', 'ms', w, st('writebackQueuedToTaken'), null, null, GOALS.writeback, 1);
    add('3c     write-back job taken → note at the fake p50', 'ms', w, st('writebackTakenToNote'), null, null, GOALS.writeback, 1);
  }
  const f = results.fanin?.reps;
  if (f) {
    add(
      '4 agents connected to one API (falsely offline: max over reps)',
      'agents',
      f,
      (r) => r.agents,
      null,
      null,
      `${GOALS.faninAgents}; offline max ${Math.max(...f.map((r) => r.falselyOffline))}`,
      0,
    );
    add(
      '4 API resident memory with them (anchor: bare ws server)',
      'MiB',
      f,
      (r) => r.apiRssMiB,
      (r) => r.anchorRssMiB,
      (r) => r.apiRssMiB / r.anchorRssMiB,
      GOALS.faninRss,
      0,
    );
    add(
      '4 memory per connection (anchor: bare ws)',
      'KiB',
      f,
      (r) => r.bytesPerConnection / 1024,
      (r) => r.anchorBytesPerConnection / 1024,
      (r) => r.ratio,
      GOALS.faninPerConn,
      1,
    );
  }
  const co = results.console?.reps;
  if (co?.length) {
    const scale = `${co[0].sessions} sessions, headless Chromium`;
    add(`9 console first page load (navigation → sessions list rendered) p95, ${scale}`, 'ms', co, (r) => r.p95, null, null, '(report)');
    add(`9 console first page load p50, ${scale}`, 'ms', co, (r) => r.p50, null, null, '(report)');
  }
  const ac = results.access?.reps;
  if (ac?.length) {
    const scale = `${ac[0].devices} devices, ${ac[0].principals} principals`;
    add(`6 access review of one device p95, ${scale}`, 'ms', ac, (r) => r.deviceP95, null, null, GOALS.accessDevice);
    add(`6 access review of one device p50, ${scale}`, 'ms', ac, (r) => r.deviceP50, null, null, '(report)');
    add(
      `6 access review of one principal (NDJSON, reaches every device), ${scale}`,
      'devices/s',
      ac,
      (r) => r.principalDevicesPerSecond,
      null,
      null,
      GOALS.accessPrincipal,
      0,
    );
  }
  const au = results.audit?.reps;
  if (au) {
    const rowsK = `${round(au[0].rows / 1e6, 2)}M rows`;
    add(
      `5 audit per-viewer 30-day query p95, ${rowsK} (anchor: same SQL direct)`,
      'ms',
      au,
      (r) => r.queryMs.p95,
      (r) => r.queryDirectMs.p95,
      (r) => r.queryRatioP95,
      GOALS.auditQuery,
      1,
    );
    add(
      `5 audit export GET /v1/audit/export, ${rowsK} (anchor: psql COPY of the same rows)`,
      'rows/s',
      au,
      (r) => r.exportRowsPerSecond,
      (r) => r.exportAnchorRowsPerSecond,
      (r) => r.exportRatio,
      GOALS.auditExport,
      0,
    );
    add(
      '5 audit export: API peak RSS (anchor: its RSS before)',
      'MiB',
      au,
      (r) => r.exportApiPeakRssMiB,
      (r) => r.exportApiRssBeforeMiB,
      (r) => r.exportApiPeakRssMiB / r.exportApiRssBeforeMiB,
      GOALS.auditExportRss,
      0,
    );
    add('5 audit export: CPU of others on the machine meanwhile', 'cores', au, (r) => r.exportCpu.other, null, null, '(context)', 2);
    add(
      `5 audit verify-audit, ${rowsK} (anchor: one plain COPY in the same order, s)`,
      's',
      au,
      (r) => r.verifySeconds,
      (r) => r.plainReadSeconds,
      (r) => r.verifySeconds / r.plainReadSeconds,
      GOALS.auditVerify,
      1,
    );
    add('5 audit verify-audit peak RSS', 'MiB', au, (r) => r.verifyPeakRssMiB, null, null, GOALS.auditVerifyRss, 0);
    add('5 audit verify-audit: CPU of others on the machine meanwhile', 'cores', au, (r) => r.verifyCpu.other, null, null, '(context)', 2);
    add(
      `5 audit verify-audit extrapolated to 10M rows (linear)`,
      's',
      au,
      (r) => r.verifySecondsExtrapolatedTo10M,
      null,
      null,
      GOALS.auditVerify,
      0,
    );
  }
  const sc = results.schedules;
  if (sc?.registration?.bulk) {
    const { api, bulk, memory } = sc.registration;
    const one = [sc.registration];
    add(
      `7 schedules: POST /v1/schedules over ${api.connections} connections`,
      'req/s',
      one,
      () => api.requestsPerSecond,
      null,
      null,
      GOALS.schedRegister,
      0,
    );
    add('7 schedules: POST /v1/schedules latency p99', 'ms', one, () => api.latencyMs.p99, null, null, GOALS.schedRegister, 1);
    add(
      `7 schedules: ${bulk.schedules} more by SQL (one statement)`,
      's',
      one,
      () => bulk.insertSeconds,
      null,
      null,
      GOALS.schedRegister,
      1,
    );
    add(`7 schedules: relays move ${memory.total} timers to Redis`, 's', one, () => bulk.relaySeconds, null, null, GOALS.schedRegister, 1);
    add(
      `7 schedules: PostgreSQL schedules table, ${memory.total} rows`,
      'MiB',
      one,
      () => memory.postgresMiB.schedules,
      null,
      null,
      GOALS.schedRegister,
      1,
    );
    add(
      `7 schedules: Redis used_memory for ${memory.delayedInRedis} delayed timers`,
      'MiB',
      one,
      () => memory.redisMiB,
      null,
      null,
      GOALS.schedRegister,
      1,
    );
  }
  for (const b of sc?.burst ?? []) {
    const one = [b];
    const w = `${b.occurrences} due at once, ${b.workers} worker${b.workers > 1 ? 's' : ''}${b.profiled ? ' UNDER THE PROFILER' : ''}`;
    for (const q of ['p50', 'p99', 'max'])
      add(`7 schedules: ${w}: due → decided ${q}`, 's', one, () => b.lagMs[q] / 1000, null, null, GOALS.schedBurst, 2);
    add(
      `7 schedules: ${w}: decided (all within 60 s: ${b.allWithin60s ? 'yes' : 'NO'})`,
      'occurrences',
      one,
      () => b.decided,
      null,
      null,
      GOALS.schedBurst,
      0,
    );
  }
  if (sc?.rate) {
    const r = sc.rate;
    for (const q of ['p50', 'p99', 'max'])
      add(
        `7 schedules: ${r.offeredPerSecond} due/s for ${r.dueSpanSeconds} s: due → decided ${q}`,
        'ms',
        [r],
        () => r.lagMs[q],
        null,
        null,
        GOALS.schedRate,
        1,
      );
  }
  return rows;
}

function printTable(rows) {
  const cols = ['figure', 'unit', 'median', 'min', 'max', 'n', 'anchor', 'ratio', 'goal'];
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '-').length)));
  const line = (vals) => vals.map((v, k) => String(v ?? '-').padEnd(w[k])).join(' | ');
  console.log(line(cols));
  console.log(w.map((n) => '-'.repeat(n)).join('-|-'));
  for (const r of rows) console.log(line(cols.map((c) => r[c])));
}

async function main() {
  const ts = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '_').toLowerCase();
  const resultsDir = join(ROOT, 'bench/results');
  mkdirSync(resultsDir, { recursive: true });
  const tmpDir = mkdtempSync(join(tmpdir(), `rcflow-bench-${ts}-`));
  const logDir = join(tmpDir, 'logs');
  mkdirSync(logDir);
  const log = (msg) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
  const m = machine();
  m.postgres = (await adminQuery('SHOW server_version'))[0].server_version;
  log(`rcflow benchmarks ${quick ? '(quick) ' : ''}${ts}: ${only.join(', ')}; ${params.reps} repetitions; logs in ${logDir}`);
  log(
    `machine: ${m.nproc} cores (${m.cpuModel}), ${m.memTotalGiB} GiB, node ${m.node}, PostgreSQL ${m.postgres}, load average ${m.loadavgAtStart.join(' ')}`,
  );

  const redisDir = join(tmpDir, 'redis');
  mkdirSync(redisDir);
  const redis = await startRedis(redisDir, logDir);
  const redisClient = new IORedis(redis.url, { maxRetriesPerRequest: 1 });
  const ctx = { ts, params, redisUrl: redis.url, redis: redisClient, redisProc: redis.proc, problems: {}, logDir, tmpDir, resultsDir, log };
  process.env.BENCH_DIST = await snapshotDist(ts);
  const code = codeUnderTest(process.env.BENCH_DIST);
  log(
    `code under test: dist/ built ${code.distBuiltAt}, ${code.distJsFiles} files, sha256 ${code.distSha256} (run from a copy in ${process.env.BENCH_DIST})`,
  );
  const out = { startedAt: new Date().toISOString(), machine: m, code, params, only, results: {}, errors: {} };
  const file = join(resultsDir, `${ts}.json`);
  let failed = false;
  const onSignal = async () => {
    log('interrupted; stopping processes and removing databases');
    await stopAll();
    for (const row of await adminQuery(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`rcflow_bench_${ts}_%`])) {
      await adminQuery(`DROP DATABASE IF EXISTS ${row.datname} WITH (FORCE)`).catch(() => undefined);
    }
    rmSync(tmpDir, { recursive: true, force: true });
    rmSync(join(ROOT, `bench/.snapshot-${ts}`), { recursive: true, force: true });
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // What one loopback round trip costs on this machine (TCP, and a PostgreSQL statement).
  try {
    out.roundTrips = JSON.parse(
      execFileSync(process.execPath, [join(ROOT, 'bench/anchors/roundtrip.mjs'), '--seconds', '3', '--pg', PG_ADMIN_URL], {
        encoding: 'utf8',
      }),
    );
    log(
      `round trips: TCP ${out.roundTrips.tcp.perSecond}/s at ${out.roundTrips.tcp.cpuMicrosPerOp} µs CPU each; PostgreSQL SELECT $1 ${out.roundTrips.pgSelectParam.perSecond}/s at ${out.roundTrips.pgSelectParam.cpuMicrosPerOp} µs client + ${out.roundTrips.pgSelectParam.backendCpuMicrosPerOp} µs server CPU each`,
    );
  } catch (err) {
    log(`round-trip probe failed: ${err.message}`);
  }

  for (const name of ALL.filter((n) => only.includes(n))) {
    log(`benchmark ${name}`);
    const t0 = Date.now();
    try {
      const mod = await import(`./${name}.mjs`);
      out.results[name] = await mod.run(ctx);
      out.results[name].wallSeconds = Math.round((Date.now() - t0) / 1000);
    } catch (err) {
      failed = true;
      out.errors[name] = err.stack ?? String(err);
      log(`benchmark ${name} FAILED: ${err.stack ?? err}`);
    }
    writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  }
  out.logProblems = ctx.problems;
  out.finishedAt = new Date().toISOString();
  out.machine.loadavgAtEnd = loadavg().map((x) => round(x, 2));
  out.table = tableRows(out.results);
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);

  redisClient.disconnect();
  await redis.proc.stop();
  rmSync(join(ROOT, `bench/.snapshot-${ts}`), { recursive: true, force: true });
  console.log('');
  printTable(out.table);
  console.log('');
  for (const [tag, lines] of Object.entries(ctx.problems))
    if (lines.length) log(`${tag}: rcflow logged ${lines.length} warning/error line(s), e.g. ${lines[0]}`);
  log(`results: ${file}`);
  if (failed || env.BENCH_KEEP_LOGS === '1') log(`logs kept in ${logDir}`);
  else rmSync(tmpDir, { recursive: true, force: true });
  process.exit(failed ? 1 : 0);
}

main().catch(async (err) => {
  console.error(err.stack ?? err);
  await stopAll();
  for (const d of readdirSync(join(ROOT, 'bench')).filter((n) => n.startsWith('.snapshot-')))
    rmSync(join(ROOT, 'bench', d), { recursive: true, force: true });
  process.exit(1);
});
