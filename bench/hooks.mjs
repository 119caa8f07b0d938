// Benchmark "hooks": signed ticket webhook intake, POST /v1/hooks/:integrationId requests/s (202,
// outcome session_requested) on one API process, closed loop over BENCH_HOOKS_CONNECTIONS
// keep-alive connections. No worker runs (as in intake.mjs): the sessions stay requested, and
// their jobs reach Redis through the API's outbox relay, which is part of the cost.
//
// Everything is set up through the administration API (setUpJiraIntake of bench/lib/jira-hooks.mjs,
// shared with bench/writeback.mjs): a service principal with the role
// ticket_integration on the collection "Bench", a user with a Jira identity (the fixture's
// assignee accountId) as the viewer, BENCH_HOOKS_DEVICES devices HOOK-1… in the collection, and a
// Jira integration with the vendor's default rule (labelled remote-help, assignee changed, the
// device named in the summary). Every request is Jira's real payload
// (shared/fixtures/tickets/jira_issue_updated_assigned.json) naming one of the devices, signed as
// Jira signs it (X-Hub-Signature: sha256=<hex HMAC of the raw body>) with a unique
// X-Atlassian-Webhook-Identifier, so none is deduplicated: the measured path is the whole hook —
// signature on the raw bytes, dedupe insert, rules, device and viewer lookups, the session's
// intake, the delivery log line. The bodies are signed before the timed loop; the identifiers
// are not part of the signature (Jira signs the body only), so a pool of BODY_POOL signed bodies
// is cycled with a fresh identifier each time.
//
// Anchor in the same run: bench/anchors/bare-nest.mjs (one NestJS route answering 202), loaded
// with the same bodies and headers. After the run the delivery log must hold exactly one
// session_requested line per 202 answered (and nothing else), and as many sessions: any other
// status, outcome or count fails the benchmark.
//
// BENCH_HOOKS_PROFILE=1 runs the API under `node --cpu-prof` with the round-trip counter
// (bench/lib/count-roundtrips.cjs) and writes bench/results/<ts>-hooks-profile/summary.txt; its
// figures are then slowed by the profiler and marked so.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Proc, cpuMeter, freePort, sleep } from './lib/proc.mjs';
import { Stack, ROOT } from './lib/stack.mjs';
import { closedLoop } from './lib/http.mjs';
import { jiraDeliveryBody, jiraHeaders, setUpJiraIntake, signJira } from './lib/jira-hooks.mjs';
import { percentiles, round } from './lib/stats.mjs';
import { format, summarise } from './cpuprofile-summary.mjs';

const BODY_POOL = 1000;

/** Signed Jira deliveries, request k naming device HOOK-(k mod devices + 1). */
function signedBodies(template, secret, devices) {
  return Array.from({ length: BODY_POOL }, (_, k) => signJira(secret, jiraDeliveryBody(template, k, `HOOK-${(k % devices) + 1}`)));
}

export async function run(ctx) {
  const P = ctx.params;
  const profileDir = P.hooksProfile ? join(ctx.resultsDir, `${ctx.ts}-hooks-profile`) : null;
  const countFile = join(ctx.tmpDir, 'hooks-api-counts.json');
  const stack = new Stack('hooks', ctx, {
    TICKET_SECRETS_KEY: randomBytes(32).toString('hex'),
    RATE_LIMIT_WEBHOOK_PER_MINUTE: '1000000', // the maximum rcflow accepts, as for the other budgets
    ...P.rcflowEnv,
  });
  let bare = null;
  const reps = [];
  try {
    await stack.init();
    if (profileDir) {
      mkdirSync(profileDir, { recursive: true });
      await stack.startApi({ BENCH_COUNT_FILE: countFile }, [
        '--cpu-prof',
        '--cpu-prof-dir',
        profileDir,
        '--require',
        join(ROOT, 'bench/lib/count-roundtrips.cjs'),
      ]);
    } else await stack.startApi();
    const world = await stack.seed();
    const { integration, template } = await setUpJiraIntake(stack, world, { devices: P.hooksDevices, prefix: 'HOOK' });
    const bodies = signedBodies(template, integration.inboundSecret, P.hooksDevices);

    const port = await freePort();
    bare = new Proc('bare-nest', process.execPath, [join(ROOT, 'bench/anchors/bare-nest.mjs')], {
      env: { PORT: String(port) },
      logFile: join(ctx.logDir, 'bare-nest.log'),
    });
    await bare.waitFor(/bare listening/);

    // One fresh delivery id per request, on rcflow and the anchor alike.
    let sent = 0;
    const delivery = () => {
      const b = bodies[sent % BODY_POOL];
      sent++;
      return { body: b.raw, headers: jiraHeaders(`bench-${ctx.ts}-${sent}`, b.signature) };
    };
    let rcflow202 = 0;
    const load = async (which) => {
      const r = await closedLoop({
        base: which === 'bare' ? `http://127.0.0.1:${port}` : stack.api.url,
        method: 'POST',
        path: which === 'bare' ? '/v1/sessions' : integration.webhookPath,
        connections: P.hooksConnections,
        seconds: P.hooksSeconds,
        expect: 202,
        next: delivery,
      });
      if (which === 'rcflow') rcflow202 += r.ok;
      const other = Object.entries(r.byStatus).filter(([s]) => s !== '202');
      if (other.length || r.errors)
        throw new Error(
          `${which}: answers other than 202 ${JSON.stringify(r.byStatus)}, ${r.errors} connection errors; first: ${JSON.stringify(r.firstUnexpected)}`,
        );
      return r;
    };
    // Warm both (JIT, connection pools, caches).
    await load('bare');
    await load('rcflow');
    if (profileDir) stack.api.proc.child.kill('SIGUSR2'); // round trips counted from here
    const before = rcflow202;
    for (let i = 0; i < P.reps; i++) {
      const cb = await cpuMeter({ server: bare });
      const an = await load('bare');
      const cpuBare = await cb();
      await sleep(1000);
      const cr = await cpuMeter({ server: stack.api.proc, redis: ctx.redisProc }, { postgres: stack.pgCpu() });
      const r = await load('rcflow');
      const cpuReal = await cr();
      const rep = {
        requestsPerSecond: r.rps,
        anchorRequestsPerSecond: an.rps,
        ratio: r.rps / an.rps,
        latencyMs: percentiles(r.latencies),
        anchorLatencyMs: percentiles(an.latencies),
        statuses: r.byStatus,
        anchorStatuses: an.byStatus,
        errors: r.errors + an.errors,
        cpu: { real: cpuReal, bare: cpuBare },
        cpuMsPerRequest: {
          api: round((cpuReal.server * 1000) / r.rps, 3),
          postgres: round((cpuReal.postgres * 1000) / r.rps, 3),
          redis: round((cpuReal.redis * 1000) / r.rps, 3),
        },
        profiled: Boolean(profileDir),
      };
      ctx.log(
        `  hooks rep ${i + 1}/${P.reps}: ${round(r.rps, 0)} req/s against bare ${round(an.rps, 0)} req/s (ratio ${round(rep.ratio, 3)}); p50 ${round(rep.latencyMs.p50, 1)} ms, p99 ${round(rep.latencyMs.p99, 1)} ms; api ${cpuReal.server} cores, postgres ${cpuReal.postgres}, machine ${cpuReal.machineCores} cores${profileDir ? ' (under the profiler)' : ''}`,
      );
      reps.push(rep);
      await sleep(1000);
    }

    // Every 202 must be a delivery that requested a session: the log says what each one became.
    const outcomes = Object.fromEntries(
      (await stack.q(`SELECT outcome, count(*)::int AS n FROM ticket_deliveries GROUP BY outcome`)).map((x) => [x.outcome, x.n]),
    );
    const [{ sessions }] = await stack.q(`SELECT count(*)::int AS sessions FROM sessions WHERE ticket_ref LIKE 'BENCH-%'`);
    const checks = { accepted202: rcflow202, deliveriesByOutcome: outcomes, sessionsStored: sessions };
    ctx.log(`  hooks check: ${rcflow202} answers 202, delivery log ${JSON.stringify(outcomes)}, ${sessions} sessions`);
    const others = Object.keys(outcomes).filter((o) => o !== 'session_requested');
    if (outcomes.session_requested !== rcflow202 || others.length || sessions !== rcflow202)
      throw new Error(`the delivery log does not match the answers: ${JSON.stringify(checks)}`);

    let profile = null;
    if (profileDir) profile = await writeProfile(ctx, stack, profileDir, countFile, rcflow202 - before);
    return { reps, checks, profile };
  } finally {
    await bare?.stop();
    await stack.destroy(ctx.redis);
  }
}

/** Stops the API (the profile and the counts are written on exit) and summarises both. */
async function writeProfile(ctx, stack, dir, countFile, requests) {
  await stack.stopProcs('SIGTERM');
  const end = JSON.parse(readFileSync(countFile, 'utf8'));
  const start = JSON.parse(readFileSync(`${countFile}.start`, 'utf8'));
  const per = (a, b) => round((a - b) / requests, 2);
  const top = (m0, m1) =>
    Object.entries(m1)
      .map(([k, v]) => [k, v - (m0[k] ?? 0)])
      .filter(([, v]) => v > 0)
      .sort((x, y) => y[1] - x[1])
      .slice(0, 20)
      .map(([k, v]) => `${round(v / requests, 2)} × ${k}`);
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  const s = file ? summarise(JSON.parse(readFileSync(join(dir, file), 'utf8')), 40) : null;
  const text = [
    `api: per request (measured reps, ${requests} requests) ${per(end.pgTotal, start.pgTotal)} PostgreSQL statements, ${per(end.redisTotal, start.redisTotal)} Redis commands`,
    `  statements:\n    ${top(start.pg, end.pg).join('\n    ')}`,
    `  redis:\n    ${top(start.redis, end.redis).join('\n    ')}`,
    s ? format(s, `api cpu profile (whole process life: start-up, set-up, warm-up and reps) ${file}`) : 'no .cpuprofile written',
  ].join('\n');
  writeFileSync(join(dir, 'summary.txt'), `${text}\n`);
  ctx.log(`  hooks profile written to ${dir}/summary.txt`);
  console.log(text);
  return {
    dir,
    pgPerRequest: per(end.pgTotal, start.pgTotal),
    redisPerRequest: per(end.redisTotal, start.redisTotal),
    places: s?.places,
    functions: s?.functions,
  };
}
