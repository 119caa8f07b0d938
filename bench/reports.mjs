// Benchmark 6 (optional, BENCH_ONLY=reports): the reports of GET /v1/reports/:name at scale.
// Seeds the tables the reports read, sized like the audit benchmark: BENCH_AUDIT_ROWS / 7
// sessions (a session is 7 audit events there; the 10 M events are ~1.43 M sessions) over
// 90 days, 5,000 devices in two collections, 1,000 viewers, a refused eligibility decision per
// rejected session and the `active` audit events whose consent was pre-approved or timed out, all
// by INSERT … SELECT generate_series (seconds, not minutes). Then, through the API, for each
// report with its default range (the last 30 days): BENCH_REPORT_QUERIES requests as JSON →
// p50/p95 ms. List reports are asked for one viewer (computers-by-user), one device
// (remote-control-info) or as a whole (unattended-sessions); the time is until the last byte.
// Also a collection-scoped auditor's sessions-per-day, and the whole 30-day remote-control-info
// as CSV (rows/s and the API's peak RSS).
import http from 'node:http';
import { Stack } from './lib/stack.mjs';
import { client, keepAliveAgent } from './lib/http.mjs';
import { nowMs, percentiles, round } from './lib/stats.mjs';

const DEVICES = 5000;
const VIEWERS = 1000;

async function seed(stack, sessions, log) {
  const t = nowMs();
  await stack.q(`INSERT INTO collections (name) VALUES ('bench-a'), ('bench-b')`);
  await stack.q(
    `INSERT INTO devices (hostname, os_family) SELECT 'BR-' || lpad(g::text, 5, '0'), 'windows' FROM generate_series(1, ${DEVICES}) g`,
  );
  await stack.q(`INSERT INTO collection_members (collection_id, device_id)
    SELECT (SELECT id FROM collections WHERE name = CASE WHEN right(d.hostname, 1)::int % 2 = 0 THEN 'bench-a' ELSE 'bench-b' END), d.id
    FROM devices d WHERE d.hostname LIKE 'BR-%'`);
  await stack.q(`INSERT INTO principals (name, kind) SELECT 'viewer-' || g, 'user' FROM generate_series(1, ${VIEWERS}) g`);
  // State by g % 20: 0-13 ended, 14 rejected, 15 denied, 16 consent_timeout, 17 interrupted, 18 failed, 19 cancelled.
  await stack.q(`ALTER TABLE sessions SET UNLOGGED`);
  await stack.q(`INSERT INTO sessions (created_at, device_id, viewer_id, requester_id, type, access, state, state_changed_at, consent_rule,
      started_at, ended_at, reason, ticket_ref)
    WITH d AS (SELECT array_agg(id ORDER BY hostname) a FROM devices WHERE hostname LIKE 'BR-%'),
         v AS (SELECT array_agg(id ORDER BY name) a FROM principals WHERE name LIKE 'viewer-%'),
         g AS (SELECT g, now() - make_interval(secs => ((g::bigint * 2654435761) % 1000003) / 1000003.0 * 90 * 86400) AS c FROM generate_series(0, ${sessions - 1}) g)
    SELECT g.c, d.a[1 + g.g % ${DEVICES}], v.a[1 + g.g % ${VIEWERS}], v.a[1], 'remote-control', 'full',
      (ARRAY['ended','ended','ended','ended','ended','ended','ended','ended','ended','ended','ended','ended','ended','ended',
             'rejected','denied','consent_timeout','interrupted','failed','cancelled'])[1 + g.g % 20],
      g.c, CASE WHEN g.g % 20 IN (14, 18, 19) THEN NULL ELSE (ARRAY['prompt_user','not_required','unattended_allowed'])[1 + g.g % 3] END,
      CASE WHEN g.g % 20 < 14 OR g.g % 20 = 17 THEN g.c + make_interval(secs => 2 + g.g % 30) END,
      CASE WHEN g.g % 20 < 14 OR g.g % 20 = 17 THEN g.c + make_interval(secs => 60 + g.g % 1800) ELSE g.c + interval '3 seconds' END,
      CASE WHEN g.g % 3 = 2 THEN 'unattended maintenance ' || g.g END, CASE WHEN g.g % 5 = 0 THEN 'INC-' || g.g END
    FROM g, d, v`);
  await stack.q(`ALTER TABLE sessions SET LOGGED`);
  await stack.q(`INSERT INTO eligibility_decisions (session_id, eligible, consent_rule, checks, facts, evaluated_at)
    SELECT s.id, false, 'refused', (SELECT jsonb_agg(jsonb_build_object('id', c, 'number', n, 'passed', n NOT IN (3, 1 + abs(hashtext(s.id::text)) % 10), 'detail', 'bench'))
        FROM unnest(ARRAY['device_enrolled','rbac_scope','permitted_viewer','type_enabled','access_level','device_online','user_presence',
          'single_controller','unattended_justification','agent_requirements']) WITH ORDINALITY AS x(c, n)), '{}', s.created_at + interval '1 second'
    FROM sessions s WHERE s.state = 'rejected'`);
  // One in 50 of the prompted sessions that started was pre-approved, one in 50 started on a consent timeout.
  await stack.q(`INSERT INTO audit_events (stream, seq, occurred_at, actor_id, actor_kind, action, outcome, session_id, device_id, viewer_id, data, prev_hash, hash)
    SELECT 'bench:' || s.id, 6, s.started_at, s.device_id, 'agent', 'session.active', 'active', s.id, s.device_id, s.viewer_id,
      jsonb_build_object('consentRule', 'prompt_user', 'consent', CASE WHEN n % 2 = 0 THEN 'pre_approved' ELSE 'timed_out' END), '', ''
    FROM (SELECT s.*, row_number() OVER () n FROM sessions s WHERE s.consent_rule = 'prompt_user' AND s.started_at IS NOT NULL) s WHERE s.n % 25 = 0`);
  await stack.q('VACUUM (ANALYZE) sessions');
  await stack.q('VACUUM (ANALYZE) eligibility_decisions');
  await stack.q('VACUUM (ANALYZE) audit_events');
  await stack.q('VACUUM (ANALYZE) collection_members');
  log(`  reports: seeded ${sessions} sessions in ${round((nowMs() - t) / 1000, 0)} s`);
}

/** Reads one report to its last byte; resolves ms and bytes; samples the API's RSS. */
function readAll(stack, key, path) {
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
    let bytes = 0;
    let lines = 0;
    http
      .get(`${stack.api.url}${path}`, { headers: { authorization: `Bearer ${key}` } }, (res) => {
        if (res.statusCode !== 200) {
          clearInterval(sampler);
          res.resume();
          reject(new Error(`GET ${path}: ${res.statusCode}`));
          return;
        }
        res.on('data', (b) => {
          bytes += b.length;
          for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) lines++;
        });
        res.on('end', () => {
          clearInterval(sampler);
          resolve({ ms: nowMs() - t, bytes, lines, peakRss: peak });
        });
      })
      .on('error', (e) => {
        clearInterval(sampler);
        reject(e);
      });
  });
}

export async function run(ctx) {
  const P = ctx.params;
  const sessions = Math.ceil(P.auditRows / 7);
  const queries = Number(process.env.BENCH_REPORT_QUERIES ?? 20);
  const stack = new Stack('reports', ctx, P.rcflowEnv);
  const reps = [];
  try {
    await stack.init();
    await seed(stack, sessions, ctx.log);
    await stack.startApi({ REPORT_CONCURRENCY: '8' });
    const api = client(stack.api.url, stack.adminKey, keepAliveAgent(1));
    const viewers = (await stack.q(`SELECT id FROM principals WHERE name LIKE 'viewer-%'`)).map((r) => r.id);
    const devices = (await stack.q(`SELECT id FROM devices WHERE hostname LIKE 'BR-%'`)).map((r) => r.id);
    const [{ id: collection }] = await stack.q(`SELECT id FROM collections WHERE name = 'bench-a'`);
    const pick = (xs) => xs[Math.floor(Math.random() * xs.length)];
    const asks = {
      'computers-by-user': () => `viewerId=${pick(viewers)}`,
      'remote-control-info': () => `deviceId=${pick(devices)}`,
      'sessions-per-day': () => '',
      'sessions-per-day (collection)': () => `collectionId=${collection}`,
      'refusals-by-check': () => '',
      'consent-outcomes': () => '',
      'unattended-sessions': () => '',
      durations: () => '',
      'top-viewers': () => '',
      'top-devices': () => '',
    };
    for (let i = 0; i < P.reps; i++) {
      const rep = { sessions, reports: {} };
      for (const [label, q] of Object.entries(asks)) {
        const name = label.split(' ')[0];
        const ms = [];
        let rows = 0;
        for (let k = 0; k < queries; k++) {
          const t = nowMs();
          const r = await api.get(`/v1/reports/${name}?${q()}`);
          if (r.status !== 200) throw new Error(`GET /v1/reports/${name}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
          ms.push(nowMs() - t);
          rows = r.body.rows.length;
        }
        rep.reports[label] = { ...percentiles(ms), rows };
        ctx.log(`  reports ${label}: p50 ${round(rep.reports[label].p50, 0)} p95 ${round(rep.reports[label].p95, 0)} ms (${rows} rows)`);
      }
      const rssBefore = stack.api.proc.rss();
      const csv = await readAll(stack, stack.adminKey, '/v1/reports/remote-control-info?format=csv');
      rep.csv = {
        rows: csv.lines - 1,
        seconds: csv.ms / 1000,
        rowsPerSecond: (csv.lines - 1) / (csv.ms / 1000),
        apiRssBeforeMiB: rssBefore / 1048576,
        apiPeakRssMiB: csv.peakRss / 1048576,
      };
      ctx.log(
        `  reports: remote-control-info CSV of 30 days: ${rep.csv.rows} rows in ${round(rep.csv.seconds, 1)} s = ${round(rep.csv.rowsPerSecond, 0)} rows/s, ` +
          `API RSS ${round(rep.csv.apiRssBeforeMiB, 0)} → peak ${round(rep.csv.apiPeakRssMiB, 0)} MiB`,
      );
      reps.push(rep);
    }
    return { reps };
  } finally {
    await stack.destroy(ctx.redis);
  }
}
