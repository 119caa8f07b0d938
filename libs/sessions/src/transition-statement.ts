// Hot path: raw SQL. Every session transition is this one statement (measured in BENCHMARKS.md:
// one statement with batching costs ~125 µs of PostgreSQL CPU per transition against ~400 µs alone).
import type { EntityManager } from 'typeorm';
import { AuditEntry, ParamRef, StreamHead, auditAppendSql, chainEntries, sessionStream } from '@rcflow/audit';
import { assertTransition, isTicketNoteState, SessionState } from '@rcflow/domain';
import { JobName, QueueName, outboxInsertSql } from '@rcflow/jobs';
import { queryPrepared } from '@rcflow/database';
import type { SessionPatch, TransitionEffect, TransitionRequest, TransitionResult } from './transition';

/** How each patch key is written from the request's jsonb patch `r.patch` (absent key: column unchanged). */
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

type EffectOf<K extends TransitionEffect['kind']> = Extract<TransitionEffect, { kind: K }>;
interface Owned<K extends TransitionEffect['kind']> {
  sessionId: string;
  effect: EffectOf<K>;
}

/**
 * Each kind of effect as a CTE body writing it for every applied session that carries it (`s` is
 * the CTE of applied sessions: id, device_id, version). The only SQL of transition side effects.
 */
const EFFECT_SQL: { [K in TransitionEffect['kind']]: (p: ParamRef, rows: Owned<K>[]) => string } = {
  decision: (p, rows) => `INSERT INTO eligibility_decisions (session_id, eligible, consent_rule, checks, facts)
    SELECT u.id, u.eligible, u.consent_rule, u.checks, u.facts
      FROM unnest(${p(rows.map((r) => r.sessionId))}::uuid[], ${p(rows.map((r) => r.effect.eligible))}::boolean[],
                  ${p(rows.map((r) => r.effect.consentRule))}::text[], ${p(rows.map((r) => JSON.stringify(r.effect.checks)))}::jsonb[],
                  ${p(rows.map((r) => JSON.stringify(r.effect.facts)))}::jsonb[]) AS u(id, eligible, consent_rule, checks, facts)
      JOIN s ON s.id = u.id`,
  appliedSettings: (p, rows) => `UPDATE devices SET applied_settings_hash = u.hash
      FROM unnest(${p(rows.map((r) => r.sessionId))}::uuid[], ${p(rows.map((r) => r.effect.hash))}::text[]) AS u(id, hash)
      JOIN s ON s.id = u.id WHERE devices.id = s.device_id`,
  enqueue: (p, rows) =>
    outboxInsertSql(
      p,
      rows.map((r) => ({ job: r.effect.job, gateId: r.sessionId })),
      's',
    ),
};
const EFFECT_KINDS = Object.keys(EFFECT_SQL) as TransitionEffect['kind'][];
const NO_EFFECTS: readonly TransitionEffect[] = Object.freeze([]);

/** The audit entries of a transition, one per step, each naming the states it joins and the version it makes. */
export function transitionEntries(req: TransitionRequest): AuditEntry[] {
  const { session } = req;
  const stream = sessionStream(session.id);
  let prev = session.state;
  return req.steps.map((step, i) => {
    const entry: AuditEntry = {
      stream,
      actorId: req.actor.id,
      actorKind: req.actor.kind,
      action: `session.${step.to}`,
      outcome: step.to,
      sessionId: session.id,
      deviceId: session.deviceId,
      viewerId: session.viewerId,
      ticketRef: session.ticketRef,
      reason: step.reason ?? null,
      data: { from: prev, to: step.to, version: session.version + i + 1, ...(step.data ?? {}) },
    };
    prev = step.to;
    return entry;
  });
}

/**
 * The notes a transition owes the ticket that asked for the session: one write-back job per step
 * into a state the ticket is told of, committed with the step through the outbox (so an outcome
 * never goes untold). Sessions without a ticket owe nothing.
 */
export function ticketNoteEffects(req: TransitionRequest): TransitionEffect[] {
  if (req.session.ticketRef === null) return [];
  const sessionId = req.session.id;
  return req.steps
    .filter((step) => isTicketNoteState(step.to))
    .map((step) => ({
      kind: 'enqueue',
      job: { queue: QueueName.TicketWritebacks, name: JobName.TicketWriteback, data: { sessionId, outcome: step.to, redrive: 0 } },
    }));
}

/**
 * Applies the transitions of one or more distinct sessions in one statement: per session the update
 * fenced by state and version, one chained audit event per step (chained from the head it was read
 * with, the head moved fenced too) and its effects (with the ticket's notes, {@link ticketNoteEffects}) — all only for the sessions that applied. Every
 * step is checked against the lifecycle first. Answers one result per request, in order; null where
 * the session had moved on (a duplicate, late or out-of-order caller: nothing of it is written). Any
 * error — a unique violation, a head that does not match, a lost connection — aborts the whole
 * statement: nothing of any request applied.
 */
export async function applyTransitionBatch(
  manager: EntityManager,
  auditKey: string,
  reqs: readonly TransitionRequest[],
  now: Date = new Date(),
): Promise<(TransitionResult | null)[]> {
  const r = {
    id: [] as string[],
    from: [] as string[],
    expected: [] as number[],
    to: [] as string[],
    steps: [] as number[],
    patch: [] as string[],
  };
  const entries: AuditEntry[] = [];
  const before = new Map<string, StreamHead>();
  const effects = new Map<TransitionEffect['kind'], Owned<TransitionEffect['kind']>[]>();
  const finalState = new Map<string, SessionState>();

  // In session id order, so that two statements touching the same rows lock them in the same order.
  const ordered = [...reqs].sort((a, b) => (a.session.id < b.session.id ? -1 : a.session.id > b.session.id ? 1 : 0));
  for (const req of ordered) {
    const { session } = req;
    // One UPDATE … FROM row per session: a second would be silently ignored while its events were written.
    if (finalState.has(session.id)) throw new Error(`session ${session.id} appears twice in one statement`);
    if (req.steps.length === 0) throw new Error(`transition of session ${session.id} has no step`);
    let state = session.state;
    const patch: Record<string, unknown> = {};
    for (const step of req.steps) {
      assertTransition(state, step.to);
      // An explicit undefined clears the column.
      for (const [key, value] of Object.entries(step.patch ?? {})) patch[key] = value ?? null;
      state = step.to;
    }
    finalState.set(session.id, state);
    if (session.head) before.set(sessionStream(session.id), session.head);
    entries.push(...transitionEntries(req));
    r.id.push(session.id);
    r.from.push(session.state);
    r.expected.push(session.version);
    r.to.push(state);
    r.steps.push(req.steps.length);
    r.patch.push(JSON.stringify(patch));
    const own = session.ticketRef === null ? (req.effects ?? NO_EFFECTS) : [...(req.effects ?? []), ...ticketNoteEffects(req)];
    for (const effect of own) {
      let list = effects.get(effect.kind);
      if (!list) effects.set(effect.kind, (list = []));
      list.push({ sessionId: session.id, effect });
    }
  }
  const chained = chainEntries(auditKey, entries, before, now);

  const params: unknown[] = [];
  const p: ParamRef = (v) => `$${params.push(v)}`;
  const ctes = [
    `r AS (SELECT * FROM unnest(${p(r.id)}::uuid[], ${p(r.from)}::text[], ${p(r.expected)}::int[], ${p(r.to)}::text[], ${p(r.steps)}::int[],
                                ${p(r.patch)}::jsonb[]) AS r(id, from_state, expected, to_state, steps, patch))`,
    `s AS (UPDATE sessions SET state = r.to_state, version = sessions.version + r.steps, state_changed_at = ${p(now)}::timestamptz,
                               updated_at = ${p(now)}::timestamptz, ${SETS.join(', ')}
             FROM r WHERE sessions.id = r.id AND sessions.state = r.from_state AND sessions.version = r.expected
           RETURNING sessions.id, sessions.device_id, sessions.version,
                     CASE WHEN r.to_state = 'active'
                            THEN extract(epoch FROM sessions.state_changed_at - greatest(sessions.created_at, sessions.not_before))::float8
                          WHEN r.to_state IN ('ended', 'interrupted') AND sessions.started_at IS NOT NULL
                            THEN extract(epoch FROM coalesce(sessions.ended_at, sessions.state_changed_at) - sessions.started_at)::float8
                     END AS elapsed)`,
  ];
  const audit = auditAppendSql(p, chained, before, 'au', 's');
  ctes.push(...audit.ctes);
  for (const kind of EFFECT_KINDS) {
    const rows = effects.get(kind);
    if (rows) ctes.push(`fx_${kind} AS (${(EFFECT_SQL[kind] as (p: ParamRef, rows: Owned<typeof kind>[]) => string)(p, rows)})`);
  }
  // A head that does not match what was read means the chain and the session disagree: abort all of it.
  const rows = await queryPrepared<{ id: string; version: number; elapsed: number | null }>(
    manager,
    `WITH ${ctes.join(',\n')}
     SELECT s.id, s.version, s.elapsed, CASE WHEN ${audit.headsMatch} THEN 0
                                  ELSE rcflow_fail('audit head of a session does not match the session version') END AS ok
       FROM s`,
    params,
  );
  const applied = new Map(rows.map((row) => [row.id, row]));
  return reqs.map((req) => {
    const row = applied.get(req.session.id);
    if (row === undefined) return null;
    return {
      state: finalState.get(req.session.id)!,
      version: row.version,
      head: chained.heads.get(sessionStream(req.session.id))!,
      at: now,
      elapsedSeconds: row.elapsed ?? null,
    };
  });
}
