import { SESSION_STATES, type SessionState } from './types';

/** Allowed transitions of the session lifecycle (DESIGN.md "Session lifecycle"). */
export const TRANSITIONS: Readonly<Record<SessionState, readonly SessionState[]>> = Object.freeze({
  // failed from the early states: a request that cannot be processed at all (a poison job) ends instead of looping.
  requested: Object.freeze(['scheduled', 'validating', 'cancelled', 'failed'] as const),
  scheduled: Object.freeze(['validating', 'cancelled', 'expired'] as const),
  validating: Object.freeze(['eligible', 'rejected', 'cancelled', 'failed'] as const),
  // rejected from eligible: another session won the race for the device.
  eligible: Object.freeze(['pushing_settings', 'cancelled', 'rejected', 'failed'] as const),
  pushing_settings: Object.freeze(['awaiting_consent', 'failed', 'cancelled'] as const),
  awaiting_consent: Object.freeze(['active', 'denied', 'consent_timeout', 'failed', 'cancelled'] as const),
  // An active session is stopped by ending it, not cancelling it.
  active: Object.freeze(['ended', 'interrupted'] as const),
  ended: Object.freeze([] as const),
  rejected: Object.freeze([] as const),
  denied: Object.freeze([] as const),
  consent_timeout: Object.freeze([] as const),
  failed: Object.freeze([] as const),
  cancelled: Object.freeze([] as const),
  expired: Object.freeze([] as const),
  interrupted: Object.freeze([] as const),
});

/** States with no way out; each request ends in exactly one of them. */
export const TERMINAL_STATES: readonly SessionState[] = Object.freeze(SESSION_STATES.filter((s) => TRANSITIONS[s].length === 0));

/** States that hold the device; the database enforces at most one per device. */
export const CONTROLLING_STATES: readonly SessionState[] = Object.freeze([
  'eligible',
  'pushing_settings',
  'awaiting_consent',
  'active',
] as const);

/**
 * States a job carries a session out of; a session resting in one without a job is lost work
 * (the sweep gives it its job again).
 */
export const MOVING_STATES: readonly SessionState[] = Object.freeze([
  'requested',
  'validating',
  'eligible',
  'pushing_settings',
  'awaiting_consent',
] as const);

/** States a session waits in for something outside rcflow: the user at the device, or the clock. */
export const RESTING_STATES: readonly SessionState[] = Object.freeze(SESSION_STATES.filter((s) => !MOVING_STATES.includes(s)));

/** States in which the device's agent may know of the session: leaving one tells the agent. */
export const AGENT_AWARE_STATES: readonly SessionState[] = Object.freeze(['pushing_settings', 'awaiting_consent', 'active'] as const);

/** Non-terminal states before `active`, from which a request may be cancelled. */
export const CANCELLABLE_STATES: readonly SessionState[] = Object.freeze(
  SESSION_STATES.filter((s) => TRANSITIONS[s].includes('cancelled')),
);

/**
 * States a ticket that asked for the session is told of (a private note through the ticket
 * system's API): the session is active, or it ended one way or another the ticket should know.
 */
export const TICKET_NOTE_STATES = Object.freeze(['active', 'rejected', 'denied', 'consent_timeout', 'failed', 'ended'] as const);
export type TicketNoteState = (typeof TICKET_NOTE_STATES)[number];

/** Whether a session reaching `state` owes its ticket a note. */
export function isTicketNoteState(state: SessionState): state is TicketNoteState {
  return (TICKET_NOTE_STATES as readonly SessionState[]).includes(state);
}

/** Whether `state` is terminal (no transition leaves it). */
export function isTerminal(state: SessionState): boolean {
  return TERMINAL_STATES.includes(state);
}

/** Whether the lifecycle allows going from `from` to `to`. Staying in place is not a transition. */
export function canTransition(from: SessionState, to: SessionState): boolean {
  // Own-property lookup so that names like "toString" coming from outside are not states.
  return Object.hasOwn(TRANSITIONS, from) && TRANSITIONS[from].includes(to);
}

/** Thrown when a transition is not allowed from the current state. */
export class IllegalTransitionError extends Error {
  readonly from: SessionState;
  readonly to: SessionState;

  constructor(from: SessionState, to: SessionState) {
    super(`illegal session transition ${from} → ${to}`);
    this.name = 'IllegalTransitionError';
    this.from = from;
    this.to = to;
  }
}

/**
 * Throws {@link IllegalTransitionError} unless the lifecycle allows going from `from` to `to`.
 */
export function assertTransition(from: SessionState, to: SessionState): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(from, to);
}
