import type { SessionState } from '@rcflow/domain';
import {
  contextLogger,
  countRefusal,
  countTransition,
  observeRequestToActive,
  observeSessionDuration,
  observeTransitionBatch,
} from '@rcflow/observability';
import type { TransitionRequest, TransitionResult } from './transition';

const CONTEXT = 'SessionTransitions';
/** A reason is the caller's text (a cancel's, the checks' details): long ones are cut in the log line. */
const MAX_REASON = 300;

/**
 * What a committed transition statement tells the operator: one `info` line per step (session,
 * device, from, to, reason, cause, actor) and the metrics (transitions, request→active and session
 * durations, refusals by check, statement size). Called only after the statement committed; the
 * line's object is built only when `info` is on.
 */
export function observeCommitted(reqs: readonly TransitionRequest[], results: readonly (TransitionResult | null)[]): void {
  observeTransitionBatch(reqs.length);
  const log = contextLogger(CONTEXT);
  const logging = log.isLevelEnabled('info');
  for (let i = 0; i < reqs.length; i++) {
    const result = results[i];
    if (!result) continue;
    const req = reqs[i]!;
    let from: SessionState = req.session.state;
    for (const step of req.steps) {
      countTransition(from, step.to);
      if (logging) {
        const cause = step.data?.cause;
        log.info(
          {
            sessionId: req.session.id,
            deviceId: req.session.deviceId,
            from,
            to: step.to,
            reason: step.reason ? step.reason.slice(0, MAX_REASON) : undefined,
            cause: typeof cause === 'string' ? cause : undefined,
            actor: req.actor,
          },
          'session transition',
        );
      }
      from = step.to;
    }
    if (result.elapsedSeconds !== null) {
      if (result.state === 'active') observeRequestToActive(result.elapsedSeconds);
      else if (result.state === 'ended' || result.state === 'interrupted') observeSessionDuration(result.state, result.elapsedSeconds);
    }
    for (const effect of req.effects ?? []) {
      if (effect.kind !== 'decision' || effect.eligible) continue;
      for (const check of effect.checks) if (!check.passed) countRefusal(check.id);
    }
  }
}

/** A request accepted (intake commits it straight into `requested` or `scheduled`, no transition before it). */
export function observeAccepted(sessionId: string, deviceId: string, state: 'requested' | 'scheduled', requesterId: string): void {
  countTransition(null, state);
  const log = contextLogger(CONTEXT);
  if (log.isLevelEnabled('info')) {
    log.info({ sessionId, deviceId, from: null, to: state, actor: { id: requesterId, kind: 'principal' } }, 'session transition');
  }
}
