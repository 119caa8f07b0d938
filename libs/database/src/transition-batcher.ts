import type { EntityManager } from 'typeorm';
import { assertTransition, SessionState } from '@rcflow/domain';
import { AUDIT_EVENT_COLUMNS, chainEntries, sessionStream } from '@rcflow/audit';
import { queryPrepared } from './prepared';
import { AUDIT_EVENT_TYPES, SessionPatch, TransitionRequest, TransitionResult, applyTransitions, transitionEntries } from './session-store';

/** How each patch key is written from the row's jsonb patch `r.patch` (absent key: column unchanged). */
const PATCH_SETS: Record<keyof SessionPatch, [column: string, value: string]> = {
  consentRule: ['consent_rule', `r.patch->>'consentRule'`],
  settingsHash: ['settings_hash', `r.patch->>'settingsHash'`],
  failureCause: ['failure_cause', `r.patch->>'failureCause'`],
  startedAt: ['started_at', `(r.patch->>'startedAt')::timestamptz`],
  endedAt: ['ended_at', `(r.patch->>'endedAt')::timestamptz`],
  connectInfo: ['connect_info', `nullif(r.patch->'connectInfo', 'null'::jsonb)`],
};
const SETS = Object.entries(PATCH_SETS).map(
  ([key, [column, value]]) => `${column} = CASE WHEN r.patch ? '${key}' THEN ${value} ELSE sessions.${column} END`,
);
const EVENT_COLUMN_NAMES = AUDIT_EVENT_COLUMNS.split(',').map((c) => c.trim());

/**
 * True when `applyTransitionBatch` can carry the request: it knows the session's audit head, enqueues
 * nothing and every extra write has a batched form.
 */
export function isBatchable(req: TransitionRequest): boolean {
  return !!req.known && !req.enqueue?.length && (req.also ?? []).every((part) => !!part.batched);
}

/**
 * Applies the `known` transitions of several sessions in one statement, each exactly as
 * `applyTransitions` would: fenced by its state and version, its events chained from its known head,
 * its head updated fenced, its extra writes run only when it applied. Answers one result per request,
 * in order; null for a request whose session had moved on. Any error (a unique violation, a head
 * that does not match, a lost connection) aborts the whole statement: nothing of any request applied.
 * The sessions must be distinct and every request batchable.
 */
export async function applyTransitionBatch(
  manager: EntityManager,
  auditKey: string,
  reqs: TransitionRequest[],
  now: Date = new Date(),
): Promise<(TransitionResult | null)[]> {
  const r = { id: [] as string[], from: [] as string[], expected: [] as number[], to: [] as string[], steps: [] as number[], patch: [] as string[] };
  const k = { id: [] as string[], stream: [] as string[], oldSeq: [] as number[], oldHash: [] as string[], newSeq: [] as number[], newHash: [] as string[] };
  const events: unknown[][] = EVENT_COLUMN_NAMES.map(() => []);
  // Extra writes by their batched statement, in a stable order so the statement text repeats.
  const parts = new Map<string, { types: string[]; columns: unknown[][] }>();
  const seen = new Set<string>();

  // In session id order, so that two statements touching the same rows lock them in the same order.
  const order = reqs.map((_, i) => i).sort((a, b) => (reqs[a].sessionId < reqs[b].sessionId ? -1 : reqs[a].sessionId > reqs[b].sessionId ? 1 : 0));
  const planned = new Map<number, { state: SessionState; head: TransitionResult['head'] }>();
  for (const index of order) {
    const req = reqs[index];
    if (!isBatchable(req)) throw new Error(`transition of session ${req.sessionId} cannot be batched`);
    // One UPDATE … FROM row per session: a second would be silently ignored while its events were written.
    if (seen.has(req.sessionId)) throw new Error(`session ${req.sessionId} appears twice in one batch`);
    seen.add(req.sessionId);
    const known = req.known!;
    let from = req.from;
    const patch: Record<string, unknown> = {};
    for (const step of req.steps) {
      assertTransition(from, step.to);
      // An explicit undefined clears the column, as in applyTransitions.
      for (const [key, value] of Object.entries(step.patch ?? {})) patch[key] = value ?? null;
      from = step.to;
    }
    const stream = sessionStream(req.sessionId);
    const chained = chainEntries(
      auditKey,
      transitionEntries(req, { device_id: known.deviceId, viewer_id: known.viewerId, ticket_ref: known.ticketRef }),
      new Map([[stream, known.head]]),
      now,
    );
    const head = chained.heads.get(stream)!;
    planned.set(index, { state: from, head });
    r.id.push(req.sessionId);
    r.from.push(req.from);
    r.expected.push(req.expectedVersion);
    r.to.push(from);
    r.steps.push(req.steps.length);
    r.patch.push(JSON.stringify(patch));
    k.id.push(req.sessionId);
    k.stream.push(stream);
    k.oldSeq.push(known.head.seq);
    k.oldHash.push(known.head.hash);
    k.newSeq.push(head.seq);
    k.newHash.push(head.hash);
    for (const row of chained.rows) row.forEach((v, i) => events[i].push(v));
    for (const part of req.also ?? []) {
      const { sql, types } = part.batched!;
      if (part.params.length !== types.length) throw new Error(`batched part has ${types.length} types for ${part.params.length} params`);
      let group = parts.get(sql);
      if (!group) parts.set(sql, (group = { types, columns: [[], ...types.map(() => [])] }));
      group.columns[0].push(req.sessionId);
      part.params.forEach((v, i) => group!.columns[i + 1].push(v));
    }
  }

  const params: unknown[] = [];
  const p = (v: unknown) => `$${params.push(v)}`;
  const ctes = [
    `r AS (SELECT * FROM unnest(${p(r.id)}::uuid[], ${p(r.from)}::text[], ${p(r.expected)}::int[], ${p(r.to)}::text[], ${p(r.steps)}::int[],
                                ${p(r.patch)}::jsonb[]) AS r(id, from_state, expected, to_state, steps, patch))`,
    `s AS (UPDATE sessions SET state = r.to_state, version = sessions.version + r.steps, state_changed_at = ${p(now)}::timestamptz,
                               updated_at = ${p(now)}::timestamptz, ${SETS.join(', ')}
             FROM r WHERE sessions.id = r.id AND sessions.state = r.from_state AND sessions.version = r.expected
           RETURNING sessions.id, sessions.device_id, sessions.version)`,
    `e AS (INSERT INTO audit_events (${AUDIT_EVENT_COLUMNS})
           SELECT v.* FROM unnest(${events.map((col, i) => `${p(col)}::${AUDIT_EVENT_TYPES[i]}[]`).join(', ')}) AS v(${EVENT_COLUMN_NAMES.join(', ')})
           JOIN s ON s.id = v.session_id RETURNING 1)`,
    `h AS (UPDATE audit_stream_heads SET seq = k.new_seq, hash = k.new_hash
             FROM unnest(${p(k.id)}::uuid[], ${p(k.stream)}::text[], ${p(k.oldSeq)}::int[], ${p(k.oldHash)}::text[], ${p(k.newSeq)}::int[],
                         ${p(k.newHash)}::text[]) AS k(id, stream, old_seq, old_hash, new_seq, new_hash)
             JOIN s ON s.id = k.id
            WHERE audit_stream_heads.stream = k.stream AND audit_stream_heads.seq = k.old_seq AND audit_stream_heads.hash = k.old_hash
           RETURNING 1)`,
  ];
  [...parts.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .forEach(([sql, { types, columns }], i) => {
      const arrays = columns.map((col, j) => `${p(col)}::${j === 0 ? 'uuid' : types[j - 1]}[]`).join(', ');
      const names = ['id', ...types.map((_, j) => `p${j + 1}`)];
      ctes.push(
        `a${i} AS (WITH x AS (SELECT s.id, s.device_id, s.version, ${names.slice(1).map((n) => `u.${n}`).join(', ')}
                                FROM s JOIN unnest(${arrays}) AS u(${names.join(', ')}) ON u.id = s.id)
                   ${sql})`,
      );
    });
  // Every applied session must have moved its head; otherwise its chain and its version disagree.
  const rows = await queryPrepared<{ id: string; version: number }>(
    manager,
    `WITH ${ctes.join(',\n')}
     SELECT s.id, s.version, CASE WHEN (SELECT count(*) FROM h) = (SELECT count(*) FROM s) THEN 0
                                  ELSE rcflow_fail('audit head of a batched session does not match the session version') END AS ok
       FROM s`,
    params,
  );
  const applied = new Map(rows.map((row) => [row.id, row.version]));
  return reqs.map((req, i) => {
    const version = applied.get(req.sessionId);
    return version === undefined ? null : { state: planned.get(i)!.state, version, head: planned.get(i)!.head };
  });
}

export interface TransitionBatcherOptions {
  /** Requests per statement; 1 sends every request alone. */
  max: number;
  /** How long the first waiting request waits for others. */
  waitMs: number;
}

interface Waiting {
  req: TransitionRequest;
  resolve: (result: TransitionResult | null) => void;
  reject: (err: unknown) => void;
}

/**
 * Collects `known` transitions from concurrent callers and commits them in one statement
 * (`applyTransitionBatch`), resolving each caller with its own result once the batch committed.
 * When the batch fails, each request runs again alone through applyTransitions, so an error belongs
 * only to the request that causes it. Requests that cannot be batched run alone at once.
 */
export class TransitionBatcher {
  private waiting: Waiting[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly manager: EntityManager,
    private readonly auditKey: string,
    private readonly options: TransitionBatcherOptions,
  ) {}

  apply(req: TransitionRequest): Promise<TransitionResult | null> {
    if (this.options.max <= 1 || !isBatchable(req) || this.waiting.some((w) => w.req.sessionId === req.sessionId)) {
      return applyTransitions(this.manager, this.auditKey, req);
    }
    return new Promise((resolve, reject) => {
      this.waiting.push({ req, resolve, reject });
      if (this.waiting.length >= this.options.max) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.options.waitMs);
    });
  }

  /** Sends what is waiting now. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.waiting;
    this.waiting = [];
    if (batch.length > 0) void this.send(batch);
  }

  private async send(batch: Waiting[]): Promise<void> {
    if (batch.length === 1) return this.alone(batch[0]);
    let results: (TransitionResult | null)[];
    try {
      results = await applyTransitionBatch(
        this.manager,
        this.auditKey,
        batch.map((w) => w.req),
      );
    } catch {
      // Nothing of the batch applied: each request on its own gets its own result or error.
      await Promise.all(batch.map((w) => this.alone(w)));
      return;
    }
    batch.forEach((w, i) => w.resolve(results[i]));
  }

  private async alone(w: Waiting): Promise<void> {
    try {
      w.resolve(await applyTransitions(this.manager, this.auditKey, w.req));
    } catch (err) {
      w.reject(err);
    }
  }
}
