import {
  assertTransition,
  canTransition,
  CANCELLABLE_STATES,
  CONTROLLING_STATES,
  IllegalTransitionError,
  isTerminal,
  TERMINAL_STATES,
  TRANSITIONS,
} from './state-machine';
import { SESSION_STATES, type SessionState } from './types';

// Written out by hand on purpose: a change to TRANSITIONS must be a deliberate change here too.
const EXPECTED: Record<SessionState, SessionState[]> = {
  requested: ['scheduled', 'validating', 'cancelled', 'failed'],
  scheduled: ['validating', 'cancelled', 'expired'],
  validating: ['eligible', 'rejected', 'cancelled', 'failed'],
  eligible: ['pushing_settings', 'cancelled', 'rejected', 'failed'],
  pushing_settings: ['awaiting_consent', 'failed', 'cancelled'],
  awaiting_consent: ['active', 'denied', 'consent_timeout', 'failed', 'cancelled'],
  active: ['ended', 'interrupted'],
  ended: [],
  rejected: [],
  denied: [],
  consent_timeout: [],
  failed: [],
  cancelled: [],
  expired: [],
  interrupted: [],
};

const pairs = SESSION_STATES.flatMap((from) => SESSION_STATES.map((to) => [from, to] as const));

describe('TRANSITIONS', () => {
  it('has an entry for every state and nothing else', () => {
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...SESSION_STATES].sort());
  });

  it.each(SESSION_STATES.map((s) => [s]))('lists exactly the expected exits of %s', (from) => {
    expect([...TRANSITIONS[from]].sort()).toEqual([...EXPECTED[from]].sort());
  });

  it('is frozen', () => {
    expect(Object.isFrozen(TRANSITIONS)).toBe(true);
    for (const s of SESSION_STATES) expect(Object.isFrozen(TRANSITIONS[s])).toBe(true);
  });
});

describe('canTransition / assertTransition over every pair', () => {
  it(`covers all ${SESSION_STATES.length ** 2} pairs`, () => {
    expect(pairs).toHaveLength(225);
  });

  it.each(pairs)('%s → %s', (from, to) => {
    const allowed = EXPECTED[from].includes(to);
    expect(canTransition(from, to)).toBe(allowed);
    if (allowed) {
      expect(() => assertTransition(from, to)).not.toThrow();
    } else {
      expect(() => assertTransition(from, to)).toThrow(IllegalTransitionError);
    }
  });

  it('never allows staying in the same state', () => {
    for (const s of SESSION_STATES) expect(canTransition(s, s)).toBe(false);
  });

  it('refuses unknown states', () => {
    expect(canTransition('nope' as SessionState, 'ended')).toBe(false);
    expect(canTransition('active', 'nope' as SessionState)).toBe(false);
    expect(canTransition('toString' as SessionState, 'ended')).toBe(false);
  });
});

describe('terminal states', () => {
  const terminal: SessionState[] = ['ended', 'rejected', 'denied', 'consent_timeout', 'failed', 'cancelled', 'expired', 'interrupted'];

  it('are exactly the states without exits', () => {
    expect([...TERMINAL_STATES].sort()).toEqual([...terminal].sort());
  });

  it.each(terminal.map((s) => [s]))('%s has no exits', (s) => {
    expect(isTerminal(s)).toBe(true);
    expect(TRANSITIONS[s]).toHaveLength(0);
    for (const to of SESSION_STATES) expect(canTransition(s, to)).toBe(false);
  });

  it.each(SESSION_STATES.filter((s) => !terminal.includes(s)).map((s) => [s]))('%s is not terminal', (s) => {
    expect(isTerminal(s)).toBe(false);
  });

  it('every non-terminal state can reach a terminal state', () => {
    const reachesTerminal = (s: SessionState, seen = new Set<SessionState>()): boolean => {
      if (isTerminal(s)) return true;
      seen.add(s);
      return TRANSITIONS[s].some((n) => !seen.has(n) && reachesTerminal(n, seen));
    };
    for (const s of SESSION_STATES) expect(reachesTerminal(s)).toBe(true);
  });
});

describe('state groups', () => {
  it('CONTROLLING_STATES are the states that hold the device', () => {
    expect(CONTROLLING_STATES).toEqual(['eligible', 'pushing_settings', 'awaiting_consent', 'active']);
  });

  it('CANCELLABLE_STATES are the non-terminal states before active', () => {
    expect([...CANCELLABLE_STATES].sort()).toEqual(
      ['requested', 'scheduled', 'validating', 'eligible', 'pushing_settings', 'awaiting_consent'].sort(),
    );
    for (const s of CANCELLABLE_STATES) {
      expect(isTerminal(s)).toBe(false);
      expect(canTransition(s, 'cancelled')).toBe(true);
    }
    expect(CANCELLABLE_STATES).not.toContain('active');
  });
});

describe('IllegalTransitionError', () => {
  it('carries from and to and names them in the message', () => {
    let caught: unknown;
    try {
      assertTransition('ended', 'active');
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(IllegalTransitionError);
    expect(caught).toBeInstanceOf(Error);
    const error = caught as IllegalTransitionError;
    expect(error.from).toBe('ended');
    expect(error.to).toBe('active');
    expect(error.name).toBe('IllegalTransitionError');
    expect(error.message).toContain('ended');
    expect(error.message).toContain('active');
  });

  it('is refused for skipping a step', () => {
    expect(() => assertTransition('requested', 'active')).toThrow(IllegalTransitionError);
    expect(() => assertTransition('active', 'cancelled')).toThrow(IllegalTransitionError);
  });
});
