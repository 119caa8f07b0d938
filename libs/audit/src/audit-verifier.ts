import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Client, ClientConfig } from 'pg';
import type { DataSource } from 'typeorm';
import { pgClientConfig } from './copy-out';
import { ActorKind, ChainedEvent, eventHash } from './audit-chain';
import { AuditProblem, ChainWalk, StreamHead } from './audit-chain-walk';
import type { StreamRange } from './audit-copy-check';
import { RangeJob, RangeResult, ReaderInit, runReader } from './audit-verify-reader';
import type { FromWorker, ToWorker } from './audit-verify.worker';
import type { AuditCheckpoint } from './audit-checkpoint';
import type { NewestCheckpoint } from './audit-checkpoint-store';

export type { AuditProblem } from './audit-chain-walk';

export interface AuditVerification {
  ok: boolean;
  eventsChecked: number;
  streamsChecked: number;
  /**
   * The first problems found (at most `maxProblems`): those of events and of where streams end
   * in stream order, then heads without events, then sessions whose version disagrees.
   */
  problems: AuditProblem[];
  /** The checkpoint the trail was checked against; present when the caller looked for one. */
  checkpoint?: CheckpointVerdict;
}

/** Which checkpoint the verification used (its problems are among `problems`). */
export interface CheckpointVerdict {
  /** When the newest valid checkpoint was taken; null: none was found. */
  takenAt: string | null;
  /** Where it was read: a file path or `redis:<key>`. */
  source: string | null;
  /** Streams it records. */
  streams: number;
  /** Why none was used, or what could not be read; null when all went well. */
  note: string | null;
}

/** Streams a checkpoint lists are compared with the trail in batches of this many. */
const CHECKPOINT_BATCH = 10_000;
/** The stream name under which problems of a checkpoint copy itself are reported. */
export const CHECKPOINT_PROBLEM_STREAM = '(checkpoint)';

export interface VerifyOptions {
  /**
   * The newest checkpoint found (AuditCheckpointStore.newest): every stream it lists must still
   * have its event at the recorded seq with the recorded hash, read in the same snapshot as the
   * rest of the verification. Copies that did not verify are reported as problems.
   */
  checkpoints?: NewestCheckpoint;
  maxProblems?: number;
  /**
   * 'copy' (the default on PostgreSQL): stream ranges read with COPY over parallel connections
   * that share one snapshot. 'paged': keyset pages through the DataSource, for PGlite.
   */
  mode?: 'copy' | 'paged';
  /** Rows per page in 'paged' mode (default 5000). */
  pageSize?: number;
  /** Stream ranges the trail is split into in 'copy' mode (default: 4 per reader on a large trail). */
  partitions?: number;
  /** Parallel connections in 'copy' mode (default: the number of cores, at most 8). */
  readers?: number;
  /**
   * Run each reader in a worker thread (default: when running from the compiled build, whose
   * worker file node can load; from TypeScript sources the readers share the caller's thread).
   */
  threads?: boolean;
}

const WORKER_FILE = join(__dirname, 'audit-verify.worker.js');
/** Below this many table pages (8 kB each) one reader on the caller's thread is quickest. */
const SMALL_TRAIL_PAGES = 1000;

/**
 * Verifies the whole audit trail: every event's HMAC recomputes from its content and its
 * prev_hash, links to its predecessor, and sequence numbers have no gaps; where each stream ends,
 * its last event is what its head records (catching removed tails), every head has events, and
 * each session's version is its stream's length. Streams are walked in (stream, seq) order one at
 * a time, so memory stays flat however long the trail; on PostgreSQL the stream key range is split
 * over parallel readers on one snapshot.
 */
export async function verifyAudit(dataSource: DataSource, key: string, options: VerifyOptions = {}): Promise<AuditVerification> {
  const maxProblems = options.maxProblems ?? 100;
  const pg = pgClientConfig(dataSource.options, 'rcflow-verify-audit');
  if (options.mode === 'copy' && !pg) throw new Error('verifyAudit: COPY mode needs a PostgreSQL connection URL');
  if (pg && options.mode !== 'paged') return verifyByCopy(pg, key, maxProblems, options);
  return verifyByPages(dataSource, key, maxProblems, options.pageSize ?? 5000, options.checkpoints);
}

async function verifyByCopy(pg: ClientConfig, key: string, maxProblems: number, options: VerifyOptions): Promise<AuditVerification> {
  const coordinator = new Client(pg);
  coordinator.on('error', () => undefined);
  await coordinator.connect();
  try {
    await coordinator.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const q = async <T>(sql: string, params: unknown[] = []) => (await coordinator.query(sql, params)).rows as T[];
    const { snapshot } = (await q<{ snapshot: string }>('SELECT pg_export_snapshot() AS snapshot'))[0]!;
    const { pages } = (
      await q<{ pages: number }>(`SELECT (pg_relation_size('audit_events') / current_setting('block_size')::int)::int AS pages`)
    )[0]!;
    const small = pages < SMALL_TRAIL_PAGES;
    const readers = Math.max(1, options.readers ?? (small ? 1 : Math.min(availableParallelism(), 8)));
    const ranges = await splitStreams(q, pages, options.partitions ?? (small ? 1 : readers * 4));
    const init: ReaderInit = { pg, key, snapshot, maxProblems };
    const threads = options.threads ?? existsSync(WORKER_FILE);
    const walking = runReaders(init, ranges, Math.min(readers, ranges.length), threads);
    // Meanwhile, on the coordinator's connection (same snapshot): what the walk cannot see.
    const rest = await checkHeadsAndSessions(q, maxProblems);
    const against = await checkAgainstCheckpoints(q, options.checkpoints, maxProblems);
    const results = await walking;
    await coordinator.query('COMMIT');
    const problems = [...results.flatMap((r) => r.problems), ...rest.problems, ...against.problems].slice(0, maxProblems);
    const eventsChecked = results.reduce((n, r) => n + r.events, 0);
    return withVerdict({ ok: problems.length === 0, eventsChecked, streamsChecked: rest.heads, problems }, against.verdict);
  } finally {
    await coordinator.end();
  }
}

/**
 * Splits the stream key space into up to `n` ranges holding about as many events each, from a
 * sample of the table sorted by PostgreSQL (so bounds follow the column's collation).
 */
async function splitStreams(q: <T>(sql: string, p?: unknown[]) => Promise<T[]>, pages: number, n: number): Promise<StreamRange[]> {
  if (n <= 1) return [{ from: null, to: null }];
  const percent = Math.min(100, (100 * 2000) / Math.max(1, pages));
  const sample = (
    await q<{ stream: string }>(`SELECT stream FROM audit_events TABLESAMPLE SYSTEM (${percent.toFixed(6)}) ORDER BY stream`)
  ).map((r) => r.stream);
  const bounds: string[] = [];
  for (let k = 1; k < n; k++) {
    const b = sample[Math.floor((k * sample.length) / n)];
    if (b !== undefined && b !== bounds[bounds.length - 1]) bounds.push(b);
  }
  return [null, ...bounds].map((from, i) => ({ from, to: bounds[i] ?? null }));
}

/** Runs `count` readers over the ranges (handed out in order as readers free up); results in range order. */
async function runReaders(init: ReaderInit, ranges: StreamRange[], count: number, threads: boolean): Promise<RangeResult[]> {
  const results: RangeResult[] = [];
  let nextIndex = 0;
  let failed = false;
  const next = (): RangeJob | null => (failed || nextIndex >= ranges.length ? null : { index: nextIndex, range: ranges[nextIndex++]! });
  const report = (r: RangeResult) => {
    results[r.index] = r;
  };
  const one = threads ? () => inThread(init, next, report) : () => runReader(init, () => Promise.resolve(next()), report);
  const settled = await Promise.allSettled(
    Array.from({ length: count }, () =>
      one().catch((err: unknown) => {
        failed = true;
        throw err;
      }),
    ),
  );
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure) throw failure.reason;
  return results;
}

function inThread(init: ReaderInit, next: () => RangeJob | null, report: (r: RangeResult) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_FILE, { workerData: init });
    let finished = false;
    const finish = (err?: Error) => {
      if (finished) return;
      finished = true;
      void worker.terminate();
      if (err) reject(err);
      else resolve();
    };
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'next') worker.postMessage({ type: 'job', job: next() } satisfies ToWorker);
      else if (m.type === 'result') report(m.result);
      else if (m.type === 'end') finish();
      else finish(new Error(`audit verification reader failed: ${m.message}`));
    });
    worker.on('error', (err) => finish(err));
    worker.on('exit', (code) => finish(code === 0 ? undefined : new Error(`audit verification reader exited with ${code}`)));
  });
}

/** Heads without any event, the number of heads, and sessions whose version is not their stream's length. */
async function checkHeadsAndSessions(
  q: <T>(sql: string, p?: unknown[]) => Promise<T[]>,
  maxProblems: number,
): Promise<{ heads: number; problems: AuditProblem[] }> {
  const problems: AuditProblem[] = [];
  // A correlated probe per head (LIMIT keeps PostgreSQL from turning it into a full anti-join).
  const orphans = await q<{ stream: string; seq: number }>(
    `SELECT h.stream, h.seq FROM audit_stream_heads h
      WHERE (SELECT 1 FROM audit_events e WHERE e.stream = h.stream LIMIT 1) IS NULL ORDER BY h.stream LIMIT $1`,
    [maxProblems],
  );
  for (const h of orphans)
    problems.push({ stream: h.stream, seq: h.seq, eventId: null, problem: 'stream has a head but no events: events were removed' });
  const { heads } = (await q<{ heads: number }>('SELECT count(*)::int AS heads FROM audit_stream_heads'))[0]!;
  // Every session transition writes one event: a session's version is its stream's length.
  const mismatched = await q<{ id: string; version: number; seq: number | null }>(
    `SELECT s.id, s.version, h.seq FROM sessions s
       LEFT JOIN audit_stream_heads h ON h.stream = 'session:' || s.id::text
      WHERE h.seq IS DISTINCT FROM s.version LIMIT $1`,
    [maxProblems],
  );
  for (const m of mismatched) {
    problems.push({
      stream: `session:${m.id}`,
      seq: m.seq,
      eventId: null,
      problem: `session is at version ${m.version} but its audit stream has ${m.seq ?? 0} events`,
    });
  }
  return { heads, problems };
}

function withVerdict(v: AuditVerification, verdict: CheckpointVerdict | null): AuditVerification {
  return verdict ? { ...v, checkpoint: verdict } : v;
}

/**
 * The trail against the newest checkpoint: the audit trail is append-only, so every head a
 * checkpoint recorded must still be there, as it was — the event at that seq with that hash. What
 * the chain alone cannot tell (a tail removed and the head and session version rewritten to match,
 * a stream deleted whole) shows here, named by stream. Copies that failed their own check are
 * problems too; no checkpoint at all is said, not failed.
 */
async function checkAgainstCheckpoints(
  q: <T>(sql: string, p?: unknown[]) => Promise<T[]>,
  checkpoints: NewestCheckpoint | undefined,
  maxProblems: number,
): Promise<{ verdict: CheckpointVerdict | null; problems: AuditProblem[] }> {
  if (!checkpoints) return { verdict: null, problems: [] };
  const problems: AuditProblem[] = checkpoints.invalid.map((i) => ({
    stream: CHECKPOINT_PROBLEM_STREAM,
    seq: null,
    eventId: null,
    problem: `${i.source}: ${i.problem}`,
  }));
  const notes = [...checkpoints.notes];
  const found = checkpoints.found;
  if (!found) {
    notes.unshift('no checkpoint found: the trail was checked by its chain alone');
    return { verdict: { takenAt: null, source: null, streams: 0, note: notes.join('; ') }, problems };
  }
  problems.push(...(await compareWithCheckpoint(q, found.checkpoint, maxProblems)));
  return {
    verdict: {
      takenAt: found.checkpoint.takenAt,
      source: found.source,
      streams: found.checkpoint.streams,
      note: notes.length ? notes.join('; ') : null,
    },
    problems,
  };
}

async function compareWithCheckpoint(
  q: <T>(sql: string, p?: unknown[]) => Promise<T[]>,
  cp: AuditCheckpoint,
  maxProblems: number,
): Promise<AuditProblem[]> {
  const problems: AuditProblem[] = [];
  const of = `the checkpoint of ${cp.takenAt}`;
  for (let i = 0; i < cp.list.length && problems.length < maxProblems; i += CHECKPOINT_BATCH) {
    const batch = cp.list.slice(i, i + CHECKPOINT_BATCH);
    // Only heads that do not match come back, and only for them the stream's last seq is looked up.
    const rows = await q<{ stream: string; seq: number; id: string | null; last: number | null }>(
      `SELECT c.stream, c.seq, e.id::text AS id,
              (SELECT max(x.seq) FROM audit_events x WHERE x.stream = c.stream) AS last
         FROM unnest($1::text[], $2::int[], $3::text[]) AS c(stream, seq, hash)
         LEFT JOIN audit_events e ON e.stream = c.stream AND e.seq = c.seq
        WHERE e.hash IS DISTINCT FROM c.hash
        ORDER BY c.stream
        LIMIT $4`,
      [batch.map((h) => h[0]), batch.map((h) => h[1]), batch.map((h) => h[2]), maxProblems - problems.length],
    );
    for (const r of rows) {
      const { seq, last } = r;
      let problem: string;
      if (r.id !== null) problem = `event differs from the one ${of} recorded at this seq: it was rewritten`;
      else if (last === null) problem = `stream has no events but ${of} recorded ${seq}: the stream was deleted`;
      else if (last < seq) problem = `stream ends at seq ${last} but ${of} recorded ${seq}: its tail was removed`;
      else problem = `event recorded by ${of} at this seq is missing: it was removed`;
      problems.push({ stream: r.stream, seq, eventId: r.id, problem });
    }
  }
  return problems;
}

interface StoredRow {
  id: string;
  stream: string;
  seq: number;
  occurred_at: Date;
  actor_id: string | null;
  actor_kind: ActorKind;
  action: string;
  outcome: string;
  session_id: string | null;
  device_id: string | null;
  viewer_id: string | null;
  ticket_ref: string | null;
  reason: string | null;
  data: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

/** Keyset pages through the DataSource, on one thread; for drivers without COPY (PGlite). */
async function verifyByPages(
  dataSource: DataSource,
  key: string,
  maxProblems: number,
  pageSize: number,
  checkpoints: NewestCheckpoint | undefined,
): Promise<AuditVerification> {
  const walk = new ChainWalk(maxProblems);
  let cursor: [string, number] | null = null;
  let last: string | null = null;
  for (;;) {
    const rows: StoredRow[] = await dataSource.query(
      `SELECT id::text AS id, stream, seq, occurred_at, actor_id, actor_kind, action, outcome, session_id, device_id,
              viewer_id, ticket_ref, reason, data, prev_hash, hash
         FROM audit_events ${cursor ? 'WHERE (stream, seq) > ($2, $3)' : ''} ORDER BY stream, seq LIMIT $1`,
      cursor ? [pageSize, ...cursor] : [pageSize],
    );
    // The heads of the streams that start on this page: bounded by the page size.
    const starting = [...new Set(rows.map((r) => r.stream))].filter((s) => s !== last);
    const heads = new Map<string, StreamHead>();
    if (starting.length) {
      const found: { stream: string; seq: number; hash: string }[] = await dataSource.query(
        'SELECT stream, seq, hash FROM audit_stream_heads WHERE stream = ANY($1)',
        [starting],
      );
      for (const h of found) heads.set(h.stream, { seq: h.seq, hash: h.hash });
    }
    for (const row of rows) {
      walk.event(row.stream, row.seq, row.prev_hash, row.hash, () => row.id, storedHashMatches(key, row), heads.get(row.stream) ?? null);
    }
    if (rows.length < pageSize) break;
    const end = rows[rows.length - 1]!;
    cursor = [end.stream, end.seq];
    last = end.stream;
  }
  walk.endStream();
  const q = <T>(sql: string, p?: unknown[]) => dataSource.query<T[]>(sql, p);
  const rest = await checkHeadsAndSessions(q, maxProblems);
  const against = await checkAgainstCheckpoints(q, checkpoints, maxProblems);
  const problems = [...walk.problems, ...rest.problems, ...against.problems].slice(0, maxProblems);
  return withVerdict({ ok: problems.length === 0, eventsChecked: walk.events, streamsChecked: rest.heads, problems }, against.verdict);
}

function storedHashMatches(key: string, row: StoredRow): boolean {
  const event: ChainedEvent = {
    stream: row.stream,
    seq: row.seq,
    occurredAt: new Date(row.occurred_at),
    actorId: row.actor_id,
    actorKind: row.actor_kind,
    action: row.action,
    outcome: row.outcome,
    sessionId: row.session_id,
    deviceId: row.device_id,
    viewerId: row.viewer_id,
    ticketRef: row.ticket_ref,
    reason: row.reason,
    data: row.data,
    prevHash: row.prev_hash,
  };
  try {
    return eventHash(key, event) === row.hash;
  } catch {
    return false; // e.g. a timestamp JavaScript cannot represent: nothing the writer produced
  }
}
