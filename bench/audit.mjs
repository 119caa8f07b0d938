// Benchmark 5 (optional, scaled down): audit at scale. BENCH_AUDIT_ROWS audit events (default
// 1,000,000; the issue asks 10,000,000) are generated with valid HMAC chains (rcflow's own
// eventHash from dist/) in session streams of 7 events, over 1,000 viewers and 90 days, inserted
// in batches, then:
//   query:  GET /v1/audit?viewerId=…&from=<30 days ago> (first page, 50 rows) for random viewers
//           → p50/p95 ms; anchor: the same SQL sent directly with node-postgres.
//   export: rcflow has no streamed export endpoint; the closest thing, paging GET /v1/audit with
//           limit=500 and its cursor, is measured over BENCH_AUDIT_EXPORT_ROWS rows → rows/s;
//           anchor: keyset pages of the same size read directly with node-postgres.
//   verify: `node dist/apps/api/src/cli.js verify-audit` over every row → seconds and rows/s;
//           anchor: reading the same rows in the verifier's order without checking them.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Proc, sleep } from './lib/proc.mjs';
import { Stack, dist } from './lib/stack.mjs';
import { client, keepAliveAgent } from './lib/http.mjs';
import { nowMs, percentiles, round } from './lib/stats.mjs';

const require = createRequire(import.meta.url);
const DAY = 86_400_000;

async function generate(stack, rows, key) {
  const { eventHash, GENESIS_HASH } = require(dist('libs/audit/src/index.js'));
  const viewers = Array.from({ length: 1000 }, () => randomUUID());
  const devices = Array.from({ length: 5000 }, () => randomUUID());
  const steps = ['requested', 'validating', 'eligible', 'pushing_settings', 'awaiting_consent', 'active', 'ended'];
  const now = Date.now();
  const batch = [];
  const heads = [];
  let inserted = 0;
  const flush = async () => {
    if (!batch.length) return;
    const cols = Array.from({ length: 15 }, (_, c) => batch.map((r) => r[c]));
    await stack.q(
      `INSERT INTO audit_events (stream, seq, occurred_at, actor_id, actor_kind, action, outcome, session_id, device_id,
         viewer_id, ticket_ref, reason, data, prev_hash, hash)
       SELECT * FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::uuid[], $5::text[], $6::text[], $7::text[],
         $8::uuid[], $9::uuid[], $10::uuid[], $11::text[], $12::text[], $13::jsonb[], $14::text[], $15::text[])`,
      cols,
    );
    inserted += batch.length;
    batch.length = 0;
  };
  const flushHeads = async () => {
    if (!heads.length) return;
    await stack.q(`INSERT INTO audit_stream_heads (stream, seq, hash) SELECT * FROM unnest($1::text[], $2::int[], $3::text[])`, [
      heads.map((h) => h[0]), heads.map((h) => h[1]), heads.map((h) => h[2]),
    ]);
    heads.length = 0;
  };
  const t0 = nowMs();
  for (let s = 0; inserted + batch.length < rows; s++) {
    const sessionId = randomUUID();
    const stream = `session:${sessionId}`;
    const viewer = viewers[s % viewers.length];
    const device = devices[s % devices.length];
    const start = now - Math.random() * 90 * DAY;
    let prev = GENESIS_HASH;
    const n = Math.min(steps.length, rows - inserted - batch.length);
    for (let i = 0; i < n; i++) {
      const e = {
        stream, seq: i + 1, occurredAt: new Date(start + i * 20), actorId: i === 0 ? viewer : null, actorKind: i === 0 ? 'principal' : 'system',
        action: `session.${steps[i]}`, outcome: steps[i], sessionId, deviceId: device, viewerId: viewer, ticketRef: null, reason: null,
        data: i === 0 ? { type: 'remote-control', access: 'full', version: 1 } : { from: steps[i - 1], to: steps[i], version: i + 1 },
        prevHash: prev,
      };
      const hash = eventHash(key, e);
      batch.push([e.stream, e.seq, e.occurredAt, e.actorId, e.actorKind, e.action, e.outcome, e.sessionId, e.deviceId, e.viewerId,
        e.ticketRef, e.reason, JSON.stringify(e.data), e.prevHash, hash]);
      prev = hash;
    }
    heads.push([stream, n, prev]);
    if (batch.length >= 5000) {
      await flush();
      await flushHeads();
    }
  }
  await flush();
  await flushHeads();
  await stack.q('ANALYZE audit_events');
  return { viewers, rowsPerSecond: inserted / ((nowMs() - t0) / 1000) };
}

export async function run(ctx) {
  const P = ctx.params;
  const stack = new Stack('audit', ctx, P.rcflowEnv);
  const reps = [];
  try {
    await stack.init();
    await stack.startApi();
    ctx.log(`  audit: generating ${P.auditRows} chained audit events`);
    const gen = await generate(stack, P.auditRows, stack.env.AUDIT_HMAC_KEY);
    const [{ n }] = await stack.q('SELECT count(*)::int AS n FROM audit_events');
    ctx.log(`  audit: ${n} events in the table (${round(gen.rowsPerSecond, 0)} rows/s generated)`);
    const api = client(stack.api.url, stack.adminKey, keepAliveAgent(1));
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
      // Export stand-in: page through the API, and directly.
      let rowsApi = 0;
      let cursor = null;
      let t = nowMs();
      while (rowsApi < P.auditExportRows) {
        const r = await api.get(`/v1/audit?limit=500${cursor ? `&cursor=${cursor}` : ''}`);
        rowsApi += r.body.items.length;
        cursor = r.body.nextCursor;
        if (!cursor) break;
      }
      const exportApi = rowsApi / ((nowMs() - t) / 1000);
      let rowsDirect = 0;
      let lastId = null;
      t = nowMs();
      while (rowsDirect < P.auditExportRows) {
        const rows = await stack.q(
          `SELECT id, stream, seq, occurred_at, actor_id, actor_kind, action, outcome, session_id, device_id, viewer_id, ticket_ref,
                  reason, data, hash FROM audit_events ${lastId ? 'WHERE id < $1' : ''} ORDER BY id DESC LIMIT 500`,
          lastId ? [lastId] : [],
        );
        if (!rows.length) break;
        rowsDirect += rows.length;
        lastId = rows[rows.length - 1].id;
      }
      const exportDirect = rowsDirect / ((nowMs() - t) / 1000);
      // Full verification with rcflow's CLI, and a plain read in the same order.
      t = nowMs();
      const v = new Proc('verify-audit', process.execPath, [dist('apps/api/src/cli.js'), 'verify-audit'], { env: stack.env, logFile: stack.log('verify') });
      let peakRss = 0;
      while (!v.exited) {
        try {
          peakRss = Math.max(peakRss, v.rss() ?? 0);
        } catch {
          /* exited */
        }
        await Promise.race([v.done, sleep(500)]);
      }
      const verifySeconds = (nowMs() - t) / 1000;
      if (v.exited.code !== 0) throw new Error(`verify-audit failed:\n${v.tail()}`);
      t = nowMs();
      let read = 0;
      let at = ['', 0];
      for (;;) {
        const rows = await stack.q(
          `SELECT id, stream, seq, occurred_at, actor_id, actor_kind, action, outcome, session_id, device_id, viewer_id, ticket_ref,
                  reason, data, prev_hash, hash FROM audit_events WHERE (stream, seq) > ($1, $2) ORDER BY stream, seq LIMIT 5000`,
          at,
        );
        read += rows.length;
        if (rows.length < 5000) break;
        at = [rows[rows.length - 1].stream, rows[rows.length - 1].seq];
      }
      const readSeconds = (nowMs() - t) / 1000;
      const q = percentiles(viaApi);
      const qd = percentiles(direct);
      const rep = {
        rows: n,
        queryMs: q,
        queryDirectMs: qd,
        queryRatioP95: q.p95 / qd.p95,
        exportRowsPerSecond: exportApi,
        exportDirectRowsPerSecond: exportDirect,
        exportRatio: exportApi / exportDirect,
        verifySeconds,
        verifyRowsPerSecond: n / verifySeconds,
        verifyPeakRssMiB: peakRss / 1024 / 1024,
        plainReadSeconds: readSeconds,
        verifyRatio: verifySeconds / readSeconds,
        verifySecondsExtrapolatedTo10M: (verifySeconds * 10_000_000) / n,
      };
      ctx.log(`  audit rep ${i + 1}/${P.reps} (${n} rows): viewer 30-day query p50 ${round(q.p50, 1)} p95 ${round(q.p95, 1)} ms (direct SQL p95 ${round(qd.p95, 1)}); paging ${round(exportApi, 0)} rows/s (direct ${round(exportDirect, 0)}); verify ${round(verifySeconds, 1)} s = ${round(rep.verifyRowsPerSecond, 0)} rows/s (plain read ${round(readSeconds, 1)} s), peak RSS ${round(rep.verifyPeakRssMiB, 0)} MiB`);
      reps.push(rep);
    }
    return { reps, generatedRowsPerSecond: gen.rowsPerSecond };
  } finally {
    await stack.destroy(ctx.redis);
  }
}
