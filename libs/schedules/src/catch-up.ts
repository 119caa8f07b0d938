import { nextOccurrences, occurrencesBetween } from './occurrences';
import type { ScheduleSpec } from './schedule';

/*
 * What to do with occurrences that came due while nothing was watching (rcflow down, Redis emptied,
 * a worker killed): the sweep's rule, also right for the normal case of one occurrence just due.
 * Each occurrence's fate depends only on its time, `now`, its window, the policy and whether a
 * later occurrence is due too, so a long backlog can be planned in pieces (`limit`) and recorded
 * piece by piece with the same result as in one go.
 */

/** Why an occurrence that was due did not run. */
export const EXPIRY_REASONS = {
  /** Its window (windowMinutes after its time) closed before rcflow got to it. */
  windowPassed: 'missed while rcflow was down; its window had passed',
  /** missedPolicy run_once: a later occurrence, also missed and still inside its window, runs instead. */
  superseded: 'missed while rcflow was down; a later occurrence ran instead',
  /** missedPolicy skip: its time had passed by more than the grace. */
  skipped: 'missed while rcflow was down (policy skip)',
} as const;
export type ExpiryReason = (typeof EXPIRY_REASONS)[keyof typeof EXPIRY_REASONS];

export type PlannedOccurrence = { at: Date; decision: 'run' } | { at: Date; decision: 'expired'; reason: ExpiryReason };

export interface CatchUpPlan {
  /** The due occurrences, ascending, each with what to do with it. */
  due: PlannedOccurrence[];
  /**
   * False when more than `limit` occurrences were due: `due` holds the oldest `limit`; record them
   * and plan again with the last one as `lastPlannedAt`.
   */
  complete: boolean;
  /** The first occurrence after `now`, or null when endsAt comes first. */
  next: Date | null;
}

export interface CatchUpOptions {
  /** At most this many occurrences in one plan (default 1000). */
  limit?: number;
  /** missedPolicy skip: how late an occurrence may still run (default 60 s). */
  graceSeconds?: number;
}

/**
 * What to do with the occurrences that became due since the last one planned: after downtime, and
 * just as well on every sweep. Due are the occurrences after `lastPlannedAt` (exclusive; from
 * startsAt inclusive when null) up to `now` (inclusive), the oldest `limit` of them.
 *
 * An occurrence at `at` is inside its window while `at + windowMinutes >= now`. Each due occurrence:
 * - missedPolicy `run_once`: `run` when it is inside its window and no later occurrence is due;
 *   `expired` with `superseded` when it is inside its window and a later one is due (so of the
 *   missed occurrences still inside their windows exactly one runs: the latest); `expired` with
 *   `windowPassed` when its window has closed.
 * - missedPolicy `skip`: `run` when `now - at <= graceSeconds` and it is inside its window;
 *   `expired` with `skipped` when its time has passed by more than the grace, with `windowPassed`
 *   when it is within the grace but its window has closed (a window shorter than the grace). Every
 *   occurrence within the grace runs, even when a later one is due (only with a grace longer than
 *   the interval).
 */
export function planCatchUp(spec: ScheduleSpec, lastPlannedAt: Date | null, now: Date, options: CatchUpOptions = {}): CatchUpPlan {
  const { limit = 1000, graceSeconds = 60 } = options;
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a whole number >= 1, got ${limit}`);
  if (!(graceSeconds >= 0)) throw new RangeError(`graceSeconds must be >= 0, got ${graceSeconds}`);
  const after = lastPlannedAt ?? new Date(Date.parse(spec.startsAt) - 1);
  // One more than the limit: it says whether the last one planned has a later one due.
  const found = occurrencesBetween(spec, after, now, limit + 1);
  const windowMs = spec.windowMinutes * 60_000;
  const due = found.slice(0, limit).map((at, i): PlannedOccurrence => {
    const late = now.getTime() - at.getTime();
    const insideWindow = late <= windowMs;
    const laterDue = i < found.length - 1;
    if (spec.missedPolicy === 'run_once') {
      if (!insideWindow) return { at, decision: 'expired', reason: EXPIRY_REASONS.windowPassed };
      return laterDue ? { at, decision: 'expired', reason: EXPIRY_REASONS.superseded } : { at, decision: 'run' };
    }
    if (late > graceSeconds * 1000) return { at, decision: 'expired', reason: EXPIRY_REASONS.skipped };
    return insideWindow ? { at, decision: 'run' } : { at, decision: 'expired', reason: EXPIRY_REASONS.windowPassed };
  });
  return { due, complete: found.length <= limit, next: nextOccurrences(spec, now, 1)[0] ?? null };
}
