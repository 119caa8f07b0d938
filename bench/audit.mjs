// Benchmark 5 (optional): audit at scale. BENCH_AUDIT_ROWS audit events (default 1,000,000; the
// issue asks 10,000,000) with valid HMAC chains (rcflow's own eventHash from dist/) in session
// streams of 7 events, over 1,000 viewers and 90 days, loaded with COPY (bench/lib/audit-seed.mjs,
// one process per core; the table unlogged and without its secondary indexes while loading, then
// logged again, indexes rebuilt from their own definitions, VACUUM ANALYZE). Then:
//   query:  GET /v1/audit?viewerId=…&from=<30 days ago> (first page, 50 rows) for random viewers
//           → p50/p95 ms; anchor: the same SQL sent directly with node-postgres.
//   export: GET /v1/audit/export (every row, NDJSON) read to the end → rows/s and the API's peak
//           resident memory (sampled every 100 ms; against its RSS before); anchor: the same rows
//           and columns read by plain SQL, `COPY (SELECT … ORDER BY id) TO STDOUT` through psql.
//   verify: `node dist/apps/api/src/cli.js verify-audit` (its defaults) over every row → seconds,
//           rows/s and the CLI's peak RSS; anchor: the same rows in the verifier's (stream, seq)
//           order read by one plain `COPY … TO STDOUT` through psql, checking nothing.
// CPU use (cores) of each party is recorded for the export and the verification; `other` is what
// none of them accounts for, e.g. other people's work on this shared machine.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { Proc, cpuMeter, run as runToEnd, sleep } from './lib/proc.mjs';
import { Stack, dist } from './lib/stack.mjs';
import { client, keepAliveAgent } from './lib/http.mjs';
import { nowMs, percentiles, round } from './lib/stats.mjs';
import { viewerIds } from './lib/audit-seed.mjs';

const DAY = 86_400_000;
const ROOT = new URL('..', import.meta.url).pathname;

async function seed(stack, rows, key, log) {
  const t0 = nowMs();
  const phase = {};
  let t = nowMs();
  const mark = (name) => {
    phase[name] = round((nowMs() - t) / 1000, 1);
    t = nowMs();
  };
  const indexes = await stack.q(
    `SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() AND i.tablename = 'audit_events'
        AND i.indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = 'audit_events'::regclass)`,
  );
  for (const i of indexes) await stack.q(`DROP INDEX "${i.indexname}"`);
  await stack.q('ALTER TABLE audit_events SET UNLOGGED');
  await stack.q('ALTER TABLE audit_stream_heads SET UNLOGGED');
  const seedName = randomUUID();
  const parts = cpus().length;
  await Promise.all(
    Array.from({ length: parts }, (_, part) =>
      runToEnd(
        `audit-seed-${part}`,
        process.execPath,
        [
          join(ROOT, 'bench/lib/audit-seed.mjs'),
          JSON.stringify({ url: stack.env.DATABASE_URL, key, dist: dist(), rows, part, parts, seed: seedName, now: Date.now() }),
        ],
        { logFile: stack.log('seed') },
      ),
    ),
  );
  mark('copySeconds');
  await stack.q('ALTER TABLE audit_events SET LOGGED');
  await stack.q('ALTER TABLE audit_stream_heads SET LOGGED');
  mark('setLoggedSeconds');
  // One connection for the rebuilds, with room to sort in memory.
  const c = await stack.db.connect();
  try {
    await c.query(`SET maintenance_work_mem = '1GB'`);
    for (const i of indexes) await c.query(i.indexdef);
  } finally {
    c.release();
  }
  mark('indexSeconds');
  await stack.q('VACUUM (ANALYZE) audit_events');
  await stack.q('VACUUM (ANALYZE) audit_stream_heads');
  mark('vacuumSeconds');
  const seconds = (nowMs() - t0) / 1000;
  log(`  audit: loaded ${rows} events in ${round(seconds, 0)} s (${JSON.stringify(phase)})`);
  return { viewers: viewerIds(seedName), rowsPerSecond: rows / seconds, phase };
}

/** Runs psql with a COPY … TO STDOUT, discarding the rows; resolves with wall seconds and bytes. */
function psqlCopy(url, query) {
  return new Promise((resolve, reject) => {
    const t = nowMs();
    let bytes = 0;
    const p = spawn('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', `COPY (${query}) TO STDOUT`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    p.stdout.on('data', (d) => (bytes += d.length));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve({ seconds: (nowMs() - t) / 1000, bytes }) : reject(new Error(`psql: ${err}`))));
  });
}

/** Reads GET /v1/audit/export to its end, counting lines; samples the API's RSS meanwhile. */
function readExport(stack, key) {
  return new Promise((resolve, reject) => {
    let peak = stack.api.proc.rss();
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, stack.api.proc.rss());
      } catch {
        /* exited */
      }
    }, 100);
    const t = nowMs();
    let lines = 0;
    let bytes = 0;
    const req = http.get(`${stack.api.url}/v1/audit/export`, { headers: { authorization: `Bearer ${key}` } }, (res) => {
      if (res.statusCode !== 200) {
        clearInterval(sampler);
        reject(new Error(`GET /v1/audit/export: ${res.statusCode}`));
        res.resume();
        return;
      }
      res.on('data', (b) => {
        bytes += b.length;
        for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) lines++;
      });
      res.on('end', () => {
        clearInterval(sampler);
        resolve({ seconds: (nowMs() - t) / 1000, lines, bytes, peakRss: peak });
      });
      res.on('error', reject);
    });
    req.on('error', (e) => {
      clearInterval(sampler);
      reject(e);
    });
  });
}

export async function run(ctx) {
  const P = ctx.params;
  const stack = new Stack('audit', ctx, P.rcflowEnv);
  const reps = [];
  try {
    await stack.init();
    ctx.log(`  audit: loading ${P.auditRows} chained audit events`);
    const gen = await seed(stack, P.auditRows, stack.env.AUDIT_HMAC_KEY, ctx.log);
    const [{ n, mib }] = await stack.q(
      `SELECT count(*)::int AS n, (pg_total_relation_size('audit_events') / 1048576)::int AS mib FROM audit_events`,
    );
    ctx.log(`  audit: ${n} events in the table, ${mib} MiB with its indexes`);
    await stack.startApi();
    const api = client(stack.api.url, stack.adminKey, keepAliveAgent(1));
    const exportSql = `SELECT id, stream, seq, occurred_at, actor_id, actor_kind, action, outcome, session_id, device_id, viewer_id,
      ticket_ref, reason, data, hash FROM audit_events ORDER BY id`;
    const verifyOrderSql = `SELECT stream, seq, prev_hash, hash, occurred_at, actor_id, actor_kind, action, outcome, session_id, device_id,
      viewer_id, ticket_ref, reason, data, id FROM audit_events ORDER BY stream, seq`;
    for (let i = 0; i < P.reps; i++) {
      // Per-viewer 30-day query, through the API and directly.
      const from = new Date(Date.now() - 30 * DAY).toISOString();
      const viaApi = [];
      const direct = [];
      for (let k = 0; k < P.auditQueries; k++) {
        const viewer = gen.viewers[Math.floor(Math.random() * gen.viewers.length)];
        const r = await api.get(`/v1/audit?viewerId=${viewer}&from=${encodeURIComponent(from)}`);
        if (r.status !== 200) throw new Error(`GET /v1/audit: ${r.status} ${JSON.stringify(r.body)}`);
        viaApi.push(r.ms);
        const t = nowMs();
        await stack.q(
          `SELECT id, stream, seq, occurred_at, actor_id, actor_kind, action, outcome, session_id, device_id, viewer_id,
                  ticket_ref, reason, data, hash FROM audit_events WHERE viewer_id = $1 AND occurred_at >= $2 ORDER BY id DESC LIMIT 51`,
          [viewer, new Date(from)],
        );
        direct.push(nowMs() - t);
      }

      // Streamed export of every row, and the same rows by plain SQL.
      const rssBefore = stack.api.proc.rss();
      let meter = await cpuMeter({ api: stack.api.proc }, { postgres: stack.pgCpu() });
      const ex = await readExport(stack, stack.adminKey);
      const exportCpu = await meter();
      if (ex.lines !== n) throw new Error(`the export gave ${ex.lines} lines for ${n} rows`);
      meter = await cpuMeter({}, { postgres: stack.pgCpu() });
      const exAnchor = await psqlCopy(stack.env.DATABASE_URL, exportSql);
      const exportAnchorCpu = await meter();

      // Full verification with rcflow's CLI, and a plain read in the same order.
      const v = new Proc('verify-audit', process.execPath, [dist('apps/api/src/cli.js'), 'verify-audit'], {
        env: stack.env,
        logFile: stack.log('verify'),
      });
      // The CLI's own CPU is sampled with its memory: it is gone by the time the meter stops.
      meter = await cpuMeter({}, { postgres: stack.pgCpu() });
      let t = nowMs();
      let peakRss = 0;
      let cliCpu = 0;
      while (!v.exited) {
        try {
          peakRss = Math.max(peakRss, v.rss() ?? 0);
          cliCpu = v.cpuSeconds();
        } catch {
          /* exited */
        }
        await Promise.race([v.done, sleep(100)]);
      }
      const verifySeconds = (nowMs() - t) / 1000;
      const verifyCpu = await meter();
      verifyCpu.cli = round(cliCpu / verifySeconds, 2);
      verifyCpu.other = round(verifyCpu.machineCores - verifyCpu.postgres - verifyCpu.benchDriver - verifyCpu.cli, 2);
      if (v.exited.code !== 0) throw new Error(`verify-audit failed:\n${v.tail()}`);
      const verified = JSON.parse(v.stdout);
      if (!verified.ok || verified.eventsChecked !== n) throw new Error(`verify-audit: ${JSON.stringify(verified).slice(0, 500)}`);
      meter = await cpuMeter({}, { postgres: stack.pgCpu() });
      const readAnchor = await psqlCopy(stack.env.DATABASE_URL, verifyOrderSql);
      const verifyAnchorCpu = await meter();

      const q = percentiles(viaApi);
      const qd = percentiles(direct);
      const rep = {
        rows: n,
        queryMs: q,
        queryDirectMs: qd,
        queryRatioP95: q.p95 / qd.p95,
        exportRowsPerSecond: ex.lines / ex.seconds,
        exportSeconds: ex.seconds,
        exportMiB: ex.bytes / 1048576,
        exportApiRssBeforeMiB: rssBefore / 1048576,
        exportApiPeakRssMiB: ex.peakRss / 1048576,
        exportCpu,
        exportAnchorRowsPerSecond: n / exAnchor.seconds,
        exportAnchorCpu,
        exportRatio: ex.lines / ex.seconds / (n / exAnchor.seconds),
        verifySeconds,
        verifyRowsPerSecond: n / verifySeconds,
        verifyPeakRssMiB: peakRss / 1048576,
        verifyCpu,
        plainReadSeconds: readAnchor.seconds,
        verifyAnchorCpu,
        verifyRatio: verifySeconds / readAnchor.seconds,
        verifySecondsExtrapolatedTo10M: (verifySeconds * 10_000_000) / n,
      };
      ctx.log(
        `  audit rep ${i + 1}/${P.reps} (${n} rows): viewer 30-day query p50 ${round(q.p50, 1)} p95 ${round(q.p95, 1)} ms (direct SQL p95 ${round(qd.p95, 1)}); ` +
          `export ${round(rep.exportRowsPerSecond, 0)} rows/s in ${round(ex.seconds, 1)} s, API RSS ${round(rep.exportApiRssBeforeMiB, 0)} → peak ${round(rep.exportApiPeakRssMiB, 0)} MiB ` +
          `(plain COPY ${round(rep.exportAnchorRowsPerSecond, 0)} rows/s), CPU ${JSON.stringify(exportCpu)}; ` +
          `verify ${round(verifySeconds, 1)} s = ${round(rep.verifyRowsPerSecond, 0)} rows/s, peak RSS ${round(rep.verifyPeakRssMiB, 0)} MiB ` +
          `(plain ordered COPY ${round(readAnchor.seconds, 1)} s), CPU ${JSON.stringify(verifyCpu)}`,
      );
      reps.push(rep);
    }
    return { reps, generatedRowsPerSecond: gen.rowsPerSecond, seedPhases: gen.phase };
  } finally {
    await stack.destroy(ctx.redis);
  }
}
