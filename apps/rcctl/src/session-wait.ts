import { SESSION_STATES, type SessionState } from '@rcflow/domain';
import { ApiClient, ApiError, withQuery } from './api-client';
import type { AuditItem, SessionDetail } from './api-types';
import { ExitCode, outcomeExitCode } from './exit-codes';
import { followStream } from './sse';

/** A step of a session's lifecycle, from its timeline or from the live event stream. */
export interface StateStep {
  sessionId: string;
  seq: number;
  state: SessionState;
  at: string;
  reason: string | null;
  /** The audit event's id when it came from the event stream. */
  eventId: string | null;
}

export type WaitEnd =
  | { kind: 'outcome'; state: SessionState; exitCode: ExitCode }
  | { kind: 'timeout'; state: SessionState | null }
  | { kind: 'interrupted'; state: SessionState | null };

export interface WaitOptions {
  client: ApiClient;
  sessionId: string;
  timeoutMs: number;
  /** Ctrl-C. */
  signal: AbortSignal;
  onStep: (s: StateStep) => void;
  /** One line about how progress is followed (the stream, or polling and why). */
  onNote: (line: string) => void;
  pollMs?: number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

const isState = (s: unknown): s is SessionState => typeof s === 'string' && (SESSION_STATES as readonly string[]).includes(s);

/** The lifecycle step an audit event is, when it is one of this session's transitions. */
export function stepOfEvent(sessionId: string, item: AuditItem): StateStep | null {
  if (item.stream !== `session:${sessionId}` || !item.action.startsWith('session.') || !isState(item.outcome)) return null;
  if (item.action !== `session.${item.outcome}`) return null;
  return { sessionId, seq: item.seq, state: item.outcome, at: item.occurredAt, reason: item.reason, eventId: item.id };
}

const sleepFor = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/**
 * Follows a session until it reaches an outcome (active, or a terminal state), the timeout, or
 * Ctrl-C. Live from GET /v1/events?sessionId=…, each (re)connection first catching up from the
 * session's timeline so that nothing before the subscription is missed; steps are reported once,
 * in order. When the event stream is not there (404) or not for this caller (403), it polls
 * GET /v1/sessions/:id instead and says so.
 */
export async function waitForOutcome(o: WaitOptions): Promise<WaitEnd> {
  const done = new AbortController();
  const timer = setTimeout(() => done.abort('timeout'), o.timeoutMs);
  const onInterrupt = () => done.abort('interrupted');
  o.signal.addEventListener('abort', onInterrupt, { once: true });
  if (o.signal.aborted) done.abort('interrupted');
  // Written by the callbacks below; an object, so that the compiler does not narrow them to their initial values.
  const seen: { lastSeq: number; state: SessionState | null; outcome: WaitEnd | null; failure: { error: unknown } | null } = {
    lastSeq: 0,
    state: null,
    outcome: null,
    failure: null,
  };
  const finished = () => done.signal.aborted;

  const take = (step: StateStep) => {
    if (seen.outcome || step.seq <= seen.lastSeq) return;
    seen.lastSeq = step.seq;
    seen.state = step.state;
    o.onStep(step);
    const code = outcomeExitCode(step.state);
    if (code !== null) {
      seen.outcome = { kind: 'outcome', state: step.state, exitCode: code };
      done.abort('outcome');
    }
  };
  const catchUp = async () => {
    const s = await o.client.get<SessionDetail>(`/v1/sessions/${o.sessionId}`);
    for (const t of [...s.timeline].sort((a, b) => a.seq - b.seq)) {
      if (isState(t.state)) take({ sessionId: o.sessionId, seq: t.seq, state: t.state, at: t.at, reason: t.reason, eventId: null });
    }
  };

  try {
    let pending: Promise<void> = Promise.resolve();
    try {
      await followStream({
        baseUrl: o.client.baseUrl,
        headers: o.client.authHeaders(),
        fetchImpl: o.client.fetchImpl,
        sleep: o.sleep,
        path: withQuery('/v1/events', { sessionId: o.sessionId }),
        signal: done.signal,
        onStatus: (st) => {
          if (st.kind === 'open')
            pending = catchUp().catch((error: unknown) => {
              seen.failure = { error };
              done.abort('failed');
            });
          else o.onNote(`event stream lost (${st.reason}); reconnecting in ${Math.ceil(st.retryInMs / 1000)} s`);
        },
        onMessage: async (m) => {
          await pending;
          if (m.data === '') return;
          const step = stepOfEvent(o.sessionId, JSON.parse(m.data) as AuditItem);
          if (step) take(step);
        },
      });
      await pending;
    } catch (err) {
      if (!(err instanceof ApiError) || (err.status !== 404 && err.status !== 403)) throw err;
      o.onNote(`live events unavailable (${err.describe()}); polling the session instead`);
      while (!finished()) {
        await catchUp();
        if (!finished()) await (o.sleep ?? sleepFor)(o.pollMs ?? 1000, done.signal);
      }
    }
  } finally {
    clearTimeout(timer);
    o.signal.removeEventListener('abort', onInterrupt);
  }
  if (seen.failure) throw seen.failure.error;
  if (seen.outcome) return seen.outcome;
  return done.signal.reason === 'timeout' ? { kind: 'timeout', state: seen.state } : { kind: 'interrupted', state: seen.state };
}
