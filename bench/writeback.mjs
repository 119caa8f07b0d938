// Benchmark "writeback": a signed Jira delivery → the first note at the ticket, at a fixed offered
// rate (BENCH_WRITEBACK_RATE, 50 deliveries/s) for BENCH_WRITEBACK_SECONDS (20 s), open loop.
//
// One API process and one worker process, as bench/e2e.mjs starts them, with loopback agents
// (AGENT_TRANSPORT=loopback: the worker's in-process stand-in answers at once and starts the
// session) so that what is measured is rcflow's path and not a simulator's, and a fake Jira
// (apps/fake-vendor's FakeVendor, from the build under test) in this process as the integration's
// outbound URL. Set up through the administration API as bench/hooks.mjs does (setUpJiraIntake of
// bench/lib/jira-hooks.mjs), with the Jira identity given to the seeded operator and client
// settings that let it offer remote assistance (what the Jira default rule asks for).
//
// Every delivery names its own device (WB-(k+1)), its own issue (BENCH-(k+1)) and carries its own
// X-Atlassian-Webhook-Identifier, so each one makes a session, and the note the fake receives
// (POST /rest/api/3/issue/BENCH-(k+1)/comment) is matched to it by the issue key. Sessions are not
// ended: every device holds the one session it was given, so the run needs warm-up + reps × rate ×
// seconds devices. Latency per delivery: the POST written (client clock) → the fake Jira receiving
// the first note for its issue (the `active` note; same clock: the fake runs in this process).
// Split with the database's and BullMQ's timestamps (same machine, one clock): POST → the session's
// job in Redis (the API's outbox relay) → its first step (audit `session.validating`) → active
// (audit `session.active`), then active → the write-back job in Redis (an outbox relay) → taken by
// the worker (the job's processedOn) → the note at the fake; per second of the run too, to see a
// queue building up. The write-back worker's own pace (job duration, jobs in flight) is reported.
//
// The benchmark fails if any delivery is not answered 202 session_requested, if the fake refused
// any request, if any note is missing after BENCH_WRITEBACK_DRAIN seconds (it then says where each
// missing note stopped: outbox, job in Redis, delivery log line), if a session ends without going
// active, or if any note arrives that is not the first `active` note of one of the deliveries' issues.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { cpuMeter, sleep } from './lib/proc.mjs';
import { Stack, dist } from './lib/stack.mjs';
import { openLoop } from './lib/http.mjs';
import { jiraDeliveryBody, jiraHeaders, setUpJiraIntake, signJira } from './lib/jira-hooks.mjs';
import { distribution, nowMs, round } from './lib/stats.mjs';

const require = createRequire(import.meta.url);

/** What the fake Jira received, by issue key, with this process's clock. */
class NoteLog {
  constructor() {
    this.first = new Map(); // issue key -> { at, text }
    this.unexpected = []; // notes that are not the first `active` note of a known issue
    this.expected = new Set();
    this.refusals = [];
  }

  onNote(note) {
    const at = nowMs();
    if (!this.expected.has(note.ticket) || this.first.has(note.ticket) || !/ is active\./.test(note.text)) {
      this.unexpected.push({ ticket: note.ticket, text: note.text.slice(0, 200), at });
      return;
    }
    this.first.set(note.ticket, { at, text: note.text });
  }
}

export async function run(ctx) {
  const P = ctx.params;
  const perRep = Math.round(P.writebackRate * P.writebackSeconds);
  const warmup = Math.round(P.writebackRate * P.writebackWarmup);
  const devices = warmup + P.reps * perRep;
  const { FakeVendor, DEFAULT_CREDENTIALS } = require(dist('apps/fake-vendor/src/fake-vendor.js'));
  const notes = new NoteLog();
  const jira = new FakeVendor('jira', { onNote: (n) => notes.onNote(n), onRefusal: (r) => notes.refusals.push(r) });
  await jira.listen();
  const stack = new Stack('writeback', ctx, {
    AGENT_TRANSPORT: 'loopback',
    TICKET_SECRETS_KEY: randomBytes(32).toString('hex'),
    RATE_LIMIT_WEBHOOK_PER_MINUTE: '1000000', // the maximum rcflow accepts, as for the other budgets
    // Devices are registered with a heartbeat once, at set-up (minutes before the last of them is
    // used); nothing sends heartbeats for loopback agents.
    PRESENCE_GRACE_SECONDS: '86400',
    ...P.rcflowEnv,
  });
  const reps = [];
  try {
    await stack.init();
    await stack.startApi();
    await stack.startWorker();
    const world = await stack.seed({ remoteTools: { manageUnsolicitedRA: true, remoteAssistanceLevel: 'full' } });
    ctx.log(`  writeback: registering ${devices} devices WB-1… (${warmup} warm-up + ${P.reps} × ${perRep})`);
    const { integration, template } = await setUpJiraIntake(stack, world, {
      devices,
      prefix: 'WB',
      deviceFields: { domainJoined: true, osBuild: '10.0.22631', agentVersion: '1.2.0' },
      viewerId: world.operatorId,
      outbound: { url: jira.url, credentials: DEFAULT_CREDENTIALS.jira },
    });

    /** Deliveries [first, first + count): signed bodies, sent at the rate; then waits for their notes. */
    const deliver = async (first, count, label) => {
      const signed = Array.from({ length: count }, (_, j) => {
        const k = first + j;
        const body = jiraDeliveryBody(template, k, `WB-${k + 1}`);
        notes.expected.add(body.issue.key);
        return { k, key: body.issue.key, ...signJira(integration.inboundSecret, body) };
      });
      const load = [];
      const sampler = setInterval(() => load.push(loadavg()[0]), 1000).unref();
      const loadAtStart = loadavg().map((x) => round(x, 2));
      const cpu = await cpuMeter({ api: stack.api.proc, worker: stack.worker, redis: ctx.redisProc }, { postgres: stack.pgCpu() });
      const records = await openLoop({
        base: stack.api.url,
        method: 'POST',
        path: integration.webhookPath,
        rate: P.writebackRate,
        count,
        next: (j) => ({ body: signed[j].raw, headers: jiraHeaders(`wb-${ctx.ts}-${signed[j].k}`, signed[j].signature) }),
      });
      const sendSeconds = (records.at(-1).sentAt - records[0].sentAt) / 1000;

      // Every delivery must be answered 202 session_requested.
      const sessions = [];
      const wrong = [];
      for (const [j, r] of records.entries()) {
        let answer = null;
        try {
          answer = JSON.parse(r.text);
        } catch {
          /* not JSON */
        }
        if (r.status === 202 && answer?.outcome === 'session_requested' && answer.sessionId) sessions[j] = answer.sessionId;
        else wrong.push({ key: signed[j].key, status: r.status, error: r.error, body: r.text?.slice(0, 300) });
      }
      if (wrong.length)
        throw new Error(
          `${label}: ${wrong.length} of ${count} deliveries not answered 202 session_requested; first: ${JSON.stringify(wrong[0])}`,
        );

      // Every issue must get its note; a session that ends otherwise (rejected, failed…) fails the benchmark at once.
      const why = (ids) =>
        stack.q(
          `SELECT s.id, s.state, w.state AS note_state, w.attempts, w.last_error,
                  (SELECT reason FROM audit_events a WHERE a.stream = 'session:' || s.id ORDER BY seq DESC LIMIT 1) AS reason
             FROM sessions s LEFT JOIN ticket_writebacks w ON w.session_id = s.id AND w.outcome = 'active'
            WHERE s.id = ANY($1::uuid[])`,
          [ids],
        );
      const deadline = Date.now() + P.writebackDrain * 1000;
      let lastLook = Date.now();
      for (;;) {
        const waiting = signed.flatMap((s, j) => (notes.first.has(s.key) ? [] : [sessions[j]]));
        if (waiting.length === 0 || Date.now() > deadline) break;
        if (Date.now() - lastLook > 2000) {
          lastLook = Date.now();
          const [ended] = await stack.q(
            `SELECT count(*)::int AS n FROM sessions WHERE id = ANY($1::uuid[]) AND state NOT IN ('requested', 'scheduled', 'validating', 'eligible', 'pushing_settings', 'awaiting_consent', 'active')`,
            [waiting],
          );
          if (ended.n) {
            const rows = await why(waiting);
            const ex = rows.filter((r) => r.state !== 'active').slice(0, 3);
            throw new Error(`${label}: ${ended.n} sessions ended without going active, e.g. ${JSON.stringify(ex)}`);
          }
        }
        await sleep(50);
      }
      const drainedAt = nowMs();
      const cpuUse = await cpu();
      clearInterval(sampler);
      const loadAtEnd = loadavg().map((x) => round(x, 2));
      if (notes.refusals.length)
        throw new Error(`the fake Jira refused ${notes.refusals.length} requests; first: ${JSON.stringify(notes.refusals[0])}`);
      const missing = signed.flatMap((s, j) =>
        notes.first.has(s.key) ? [] : [{ key: s.key, sessionId: sessions[j], record: records[j] }],
      );
      if (missing.length) {
        const some = missing.slice(0, 5);
        const rows = await why(some.map((m) => m.sessionId));
        // Where each one stopped: its outbox row, its write-back job in Redis (times relative to the
        // delivery's 202 as this process received it), and the delivery log line as it is now.
        const detail = [];
        for (const m of some) {
          const jobId = `writeback.${m.sessionId}.active`;
          const job = await ctx.redis.hgetall(`${stack.prefix}:ticket-writebacks:${jobId}`);
          const [outbox] = await stack.q(`SELECT count(*)::int AS n FROM outbox WHERE job_id = $1`, [jobId]);
          const [line] = await stack.q(`SELECT outcome, ticket_ref, session_id FROM ticket_deliveries WHERE session_id = $1 AND first`, [
            m.sessionId,
          ]);
          const rel = (t) => (t ? round(Number(t) - m.record.answeredAt, 1) : null);
          detail.push({
            key: m.key,
            sessionId: m.sessionId,
            ...rows.find((r) => r.id === m.sessionId),
            outboxRowsLeft: outbox.n,
            job: job.timestamp
              ? {
                  addedMsAfter202: rel(job.timestamp),
                  takenMsAfter202: rel(job.processedOn),
                  finishedMsAfter202: rel(job.finishedOn),
                  attemptsMade: job.attemptsMade ?? job.atm ?? null,
                  failedReason: job.failedReason ?? null,
                  returnvalue: job.returnvalue ?? null,
                }
              : 'no job hash in Redis',
            deliveryLogNow: line ?? null,
          });
        }
        throw new Error(
          `${label}: ${missing.length} of ${count} notes missing ${P.writebackDrain} s after the last delivery; the first ${some.length}: ${JSON.stringify(detail)}`,
        );
      }
      if (notes.unexpected.length)
        throw new Error(`${notes.unexpected.length} notes that are not a first active note; first: ${JSON.stringify(notes.unexpected[0])}`);

      // The job records `sent` after the vendor's answer, so the last rows may still be committing.
      for (let t = 0; t < 100; t++) {
        const [p] = await stack.q(
          `SELECT count(*)::int AS n FROM ticket_writebacks WHERE session_id = ANY($1::uuid[]) AND state = 'pending'`,
          [sessions],
        );
        if (p.n === 0) break;
        await sleep(50);
      }
      // The database's instants (the worker's first step, the session going active, the write-back
      // job's row) and BullMQ's (each job's `timestamp`: added to Redis by an outbox relay;
      // `processedOn`: taken by a worker), all on this machine's one clock.
      const rows = await stack.q(
        `SELECT s.id, s.state,
                (SELECT extract(epoch FROM occurred_at) * 1000 FROM audit_events a
                  WHERE a.stream = 'session:' || s.id AND a.action = 'session.validating') AS validating_at,
                (SELECT extract(epoch FROM occurred_at) * 1000 FROM audit_events a
                  WHERE a.stream = 'session:' || s.id AND a.action = 'session.active') AS active_at,
                w.state AS note_state, w.attempts
           FROM sessions s LEFT JOIN ticket_writebacks w ON w.session_id = s.id AND w.outcome = 'active'
          WHERE s.id = ANY($1::uuid[])`,
        [sessions],
      );
      const byId = new Map(rows.map((x) => [x.id, x]));
      const pipe = ctx.redis.pipeline();
      for (const sid of sessions) {
        pipe.hmget(`${stack.prefix}:sessions:advance.${sid}`, 'timestamp', 'processedOn');
        pipe.hmget(`${stack.prefix}:ticket-writebacks:writeback.${sid}.active`, 'timestamp', 'processedOn', 'finishedOn');
      }
      const jobs = (await pipe.exec()).map(([err, v]) => (err || !v ? [null, null, null] : v.map((x) => (x === null ? null : Number(x)))));
      const stages = {
        answer: [],
        toActive: [],
        sentToAdvanceQueued: [],
        advanceQueuedToValidating: [],
        validatingToActive: [],
        activeToNote: [],
        activeToWritebackQueued: [],
        writebackQueuedToTaken: [],
        writebackTakenToNote: [],
      };
      const firstNote = [];
      const sendLag = [];
      const seconds = [];
      const states = {};
      let attemptsOverOne = 0;
      // The delivery log line (ticket_ref, session_id) is committed after the session and before the
      // 202 is written: a write-back job that ran before the client had its 202 may have raced it.
      let activeBefore202 = 0;
      let writebackTakenBefore202 = 0;
      for (const [j, r] of records.entries()) {
        const row = byId.get(sessions[j]);
        const noteAt = notes.first.get(signed[j].key).at;
        const activeAt = Number(row.active_at);
        const validatingAt = Number(row.validating_at);
        const [advanceQueued] = jobs[2 * j];
        const [wbQueued, wbTaken] = jobs[2 * j + 1];
        states[`${row.state}/${row.note_state}`] = (states[`${row.state}/${row.note_state}`] ?? 0) + 1;
        if (row.attempts > 1) attemptsOverOne++;
        if (activeAt < r.answeredAt) activeBefore202++;
        if (wbTaken !== null && wbTaken < r.answeredAt) writebackTakenBefore202++;
        const d = {
          answer: r.answeredAt - r.sentAt,
          toActive: activeAt - r.sentAt,
          sentToAdvanceQueued: advanceQueued === null ? null : advanceQueued - r.sentAt,
          advanceQueuedToValidating: advanceQueued === null ? null : validatingAt - advanceQueued,
          validatingToActive: activeAt - validatingAt,
          activeToNote: noteAt - activeAt,
          activeToWritebackQueued: wbQueued === null ? null : wbQueued - activeAt,
          writebackQueuedToTaken: wbQueued === null || wbTaken === null ? null : wbTaken - wbQueued,
          writebackTakenToNote: wbTaken === null ? null : noteAt - wbTaken,
        };
        for (const k of Object.keys(stages)) stages[k].push(d[k]);
        firstNote.push(noteAt - r.sentAt);
        sendLag.push(r.sentAt - r.scheduledAt);
        // Second of the run the delivery was sent in: does a stage grow as the run goes on (a queue building up)?
        const sec = Math.floor((r.sentAt - records[0].sentAt) / 1000);
        seconds[sec] ??= { firstNote: [], toActive: [], activeToWritebackQueued: [], writebackQueuedToTaken: [], writebackTakenToNote: [] };
        seconds[sec].firstNote.push(noteAt - r.sentAt);
        for (const k of ['toActive', 'activeToWritebackQueued', 'writebackQueuedToTaken', 'writebackTakenToNote'])
          seconds[sec][k].push(d[k]);
      }
      const p50 = (xs) => distribution(xs.filter((x) => x !== null)).p50;
      const bySecond = seconds.map((b, sec) => ({
        second: sec,
        deliveries: b.firstNote.length,
        ...Object.fromEntries(Object.entries(b).map(([k, xs]) => [`${k}P50`, p50(xs)])),
      }));
      const jobsMissing = jobs.filter(([t]) => t === null).length;
      // The write-back worker's own pace: each job from taken to finished (the note sent and its row
      // committed), how many ran at once on average, and notes per second while it was busy.
      const wb = jobs.filter((_, i) => i % 2 === 1 && jobs[i][1] !== null && jobs[i][2] !== null);
      const wbBusy = wb.length ? (Math.max(...wb.map((x) => x[2])) - Math.min(...wb.map((x) => x[1]))) / 1000 : null;
      const writebackJobs = {
        durationMs: distribution(wb.map(([, taken, finished]) => finished - taken)),
        notesPerSecondWhileBusy: wbBusy ? round(wb.length / wbBusy, 1) : null,
        meanInFlight: wbBusy ? round(wb.reduce((a, [, taken, finished]) => a + (finished - taken), 0) / 1000 / wbBusy, 2) : null,
      };
      const rep = {
        label,
        offeredRate: P.writebackRate,
        achievedRate: round((count - 1) / sendSeconds, 2),
        deliveries: count,
        answered202: sessions.filter(Boolean).length,
        notesReceived: signed.filter((s) => notes.first.has(s.key)).length,
        firstNoteMs: distribution(firstNote),
        answerMs: distribution(stages.answer),
        deliveryToActiveMs: distribution(stages.toActive),
        activeToNoteMs: distribution(stages.activeToNote),
        // The two halves split further (ms, p50/p95/p99/max; null where a job's hash was already gone from Redis).
        stagesMs: Object.fromEntries(Object.entries(stages).map(([k, xs]) => [k, distribution(xs.filter((x) => x !== null))])),
        sendLagMs: distribution(sendLag),
        writebackJobs,
        bySecond,
        jobHashesMissing: jobsMissing,
        drainSeconds: round((drainedAt - records.at(-1).sentAt) / 1000, 2),
        sessionAndNoteStates: states,
        notesWithMoreThanOneAttempt: attemptsOverOne,
        activeBefore202,
        writebackTakenBefore202,
        cpu: cpuUse,
        loadavg: { atStart: loadAtStart, atEnd: loadAtEnd, oneMinuteMax: round(Math.max(...load, loadAtEnd[0]), 2) },
      };
      const f = rep.firstNoteMs;
      ctx.log(
        `  writeback ${label}: ${count} deliveries at ${rep.achievedRate}/s, ${rep.notesReceived} notes; delivery → first note p50 ${f.p50} / p95 ${f.p95} / p99 ${f.p99} / max ${f.max} ms; → active p50 ${rep.deliveryToActiveMs.p50} p99 ${rep.deliveryToActiveMs.p99} ms; active → note p50 ${rep.activeToNoteMs.p50} p99 ${rep.activeToNoteMs.p99} ms (relay p50 ${rep.stagesMs.activeToWritebackQueued.p50}, queue p50 ${rep.stagesMs.writebackQueuedToTaken.p50}, job to note p50 ${rep.stagesMs.writebackTakenToNote.p50} ms; write-back jobs last p50 ${writebackJobs.durationMs.p50} ms, ${writebackJobs.meanInFlight} in flight on average); load average ${loadAtStart[0]} → ${loadAtEnd[0]}; cores ${JSON.stringify(cpuUse)}`,
      );
      return rep;
    };

    const warm = warmup ? await deliver(0, warmup, 'warm-up') : null;
    for (let i = 0; i < P.reps; i++) {
      await sleep(1000);
      reps.push(await deliver(warmup + i * perRep, perRep, `rep ${i + 1}/${P.reps}`));
    }
    const [totals] = await stack.q(
      `SELECT (SELECT count(*) FROM ticket_deliveries)::int AS deliveries,
              (SELECT count(*) FROM sessions)::int AS sessions,
              (SELECT count(*) FROM ticket_writebacks)::int AS writebacks,
              (SELECT count(*) FROM ticket_writebacks WHERE state = 'sent')::int AS sent`,
    );
    return {
      reps,
      warmup: warm,
      checks: { ...totals, notesAtTheFake: jira.notes.length, refusals: notes.refusals.length, unexpectedNotes: notes.unexpected.length },
      agents: 'loopback (AGENT_TRANSPORT=loopback, in the worker)',
    };
  } finally {
    await stack.destroy(ctx.redis);
    await jira.close();
  }
}
