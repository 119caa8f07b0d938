import { SESSION_STATES, TERMINAL_STATES, type SessionState } from '@rcflow/domain';
import { ExitCode, outcomeExitCode } from './exit-codes';

describe('outcomeExitCode', () => {
  it('maps every state of the lifecycle', () => {
    const byState = Object.fromEntries(SESSION_STATES.map((s) => [s, outcomeExitCode(s)]));
    expect(byState).toEqual({
      requested: null,
      scheduled: null,
      validating: null,
      eligible: null,
      pushing_settings: null,
      awaiting_consent: null,
      active: ExitCode.Ok,
      ended: ExitCode.Ok,
      rejected: ExitCode.Refused,
      denied: ExitCode.Refused,
      consent_timeout: ExitCode.NotStarted,
      failed: ExitCode.NotStarted,
      cancelled: ExitCode.NotStarted,
      expired: ExitCode.NotStarted,
      interrupted: ExitCode.NotStarted,
    });
  });

  it('ends the wait at every terminal state, so no session leaves a waiter hanging', () => {
    for (const s of TERMINAL_STATES) expect(outcomeExitCode(s)).not.toBeNull();
  });

  it('uses the documented numbers', () => {
    expect([ExitCode.Ok, ExitCode.Error, ExitCode.Refused, ExitCode.NotStarted, ExitCode.Timeout]).toEqual([0, 1, 2, 3, 4]);
    expect(outcomeExitCode('no_such_state' as SessionState)).toBeNull();
  });
});
