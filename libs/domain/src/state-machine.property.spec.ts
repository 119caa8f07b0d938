import fc from 'fast-check';
import {
  CANCELLABLE_STATES,
  CONTROLLING_STATES,
  IllegalTransitionError,
  TERMINAL_STATES,
  TRANSITIONS,
  assertTransition,
  canTransition,
  isTerminal,
} from './state-machine';
import { SESSION_STATES, type SessionState } from './types';

/** Property-based checks of the lifecycle: what holds for every sequence of proposed moves. */
const state = fc.constantFrom(...SESSION_STATES);

/**
 * Applies proposed moves the way SessionTransitions does (a move not allowed from the current state
 * is refused and changes nothing); answers every state passed through.
 */
function run(start: SessionState, proposals: SessionState[]): SessionState[] {
  const path = [start];
  for (const to of proposals) {
    const from = path[path.length - 1];
    if (canTransition(from, to)) path.push(to);
  }
  return path;
}

describe('session state machine (properties)', () => {
  it('agrees with assertTransition on every pair, and never allows staying in place', () => {
    fc.assert(
      fc.property(state, state, (from, to) => {
        const allowed = canTransition(from, to);
        if (allowed) expect(() => assertTransition(from, to)).not.toThrow();
        else expect(() => assertTransition(from, to)).toThrow(IllegalTransitionError);
        if (from === to) expect(allowed).toBe(false);
      }),
    );
  });

  it('refuses any string that is not a state, on either side', () => {
    const notState = fc
      .oneof(fc.string(), fc.constantFrom('toString', '__proto__', 'constructor', 'hasOwnProperty', 'valueOf', ''))
      .filter((s) => !(SESSION_STATES as readonly string[]).includes(s));
    fc.assert(
      fc.property(notState, state, (junk, s) => {
        expect(canTransition(junk as SessionState, s)).toBe(false);
        expect(canTransition(s, junk as SessionState)).toBe(false);
      }),
    );
  });

  it('visits no state twice on any path: the lifecycle has no cycle, so every request ends', () => {
    fc.assert(
      fc.property(state, fc.array(state, { maxLength: 60 }), (start, proposals) => {
        const path = run(start, proposals);
        expect(new Set(path).size).toBe(path.length);
        expect(path.length).toBeLessThanOrEqual(SESSION_STATES.length);
      }),
    );
  });

  it('from requested, a random walk of allowed moves always reaches exactly one terminal state, and stays there', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(), { minLength: SESSION_STATES.length, maxLength: SESSION_STATES.length }),
        fc.array(state),
        (choices, after) => {
          const path: SessionState[] = ['requested'];
          for (const c of choices) {
            const here = path[path.length - 1];
            const next = TRANSITIONS[here];
            if (next.length === 0) break;
            path.push(next[c % next.length]);
          }
          const last = path[path.length - 1];
          expect(isTerminal(last)).toBe(true);
          expect(path.filter((s) => TERMINAL_STATES.includes(s))).toEqual([last]);
          // Whatever is proposed afterwards, a terminal state is never left (a duplicate is a no-op).
          expect(run(last, after)).toEqual([last]);
        },
      ),
    );
  });

  it('reaches a controlling state only through eligibility, and active only after the consent step', () => {
    fc.assert(
      fc.property(fc.array(state, { maxLength: 40 }), (proposals) => {
        const path = run('requested', proposals);
        const firstControlling = path.findIndex((s) => CONTROLLING_STATES.includes(s));
        if (firstControlling >= 0) expect(path[firstControlling]).toBe('eligible');
        const active = path.indexOf('active');
        if (active >= 0)
          expect(path.slice(0, active)).toEqual(expect.arrayContaining(['validating', 'eligible', 'pushing_settings', 'awaiting_consent']));
        if (path.includes('ended') || path.includes('interrupted')) expect(path).toContain('active');
      }),
    );
  });

  it('allows cancelling exactly the states that are neither terminal nor active', () => {
    fc.assert(
      fc.property(state, (s) => {
        expect(CANCELLABLE_STATES.includes(s)).toBe(!isTerminal(s) && s !== 'active');
        expect(canTransition(s, 'cancelled')).toBe(CANCELLABLE_STATES.includes(s));
      }),
    );
  });
});
