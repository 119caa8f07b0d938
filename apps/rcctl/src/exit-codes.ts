import type { SessionState } from '@rcflow/domain';

/** rcctl's exit codes; `request --wait` maps the session's outcome onto them. */
export enum ExitCode {
  /** Done: the session is active (or ended normally), the chain verifies. */
  Ok = 0,
  /** Usage error, API error, network error. */
  Error = 1,
  /** Refused: rejected by the eligibility checks, or denied by the user at the device; the audit chain is broken (verify). */
  Refused = 2,
  /** Did not happen: failed, expired, cancelled, nobody answered the consent prompt, interrupted. */
  NotStarted = 3,
  /** Still not settled when --timeout ran out. */
  Timeout = 4,
}

const BY_STATE: Partial<Record<SessionState, ExitCode>> = {
  active: ExitCode.Ok,
  ended: ExitCode.Ok,
  rejected: ExitCode.Refused,
  denied: ExitCode.Refused,
  failed: ExitCode.NotStarted,
  expired: ExitCode.NotStarted,
  cancelled: ExitCode.NotStarted,
  consent_timeout: ExitCode.NotStarted,
  interrupted: ExitCode.NotStarted,
};

/** The exit code a wait ends with when the session reaches `state`; null while it is still on its way. */
export function outcomeExitCode(state: SessionState): ExitCode | null {
  return BY_STATE[state] ?? null;
}

/** The codes as `--help` lists them. */
export const EXIT_CODES_HELP = `Exit codes:
  0  done (request --wait: the session is active, or ended normally)
  1  usage error, API error or network error
  2  request --wait: rejected by the eligibility checks or denied by the user at the device;
     verify: the audit chain does not verify
  3  request --wait: failed, expired, cancelled, consent timed out, or interrupted
  4  request --wait: still not active when --timeout ran out
  130  request --wait: stopped by Ctrl-C (the session goes on)`;
