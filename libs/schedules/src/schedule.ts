import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';
import { textProblem } from '@rcflow/domain';
import { nextOccurrences } from './occurrences';
import { isTimeZoneName } from './zone';

/*
 * The timing of a schedule: when its occurrences fall, how long after its time each may still
 * start, and what becomes of occurrences missed while rcflow was down. Either a 5-field cron
 * expression read on the wall clock of an IANA time zone, or a fixed interval of elapsed time
 * (every `intervalMinutes` from `anchor`, which defaults to `startsAt`; daylight saving does not
 * touch it).
 *
 * Refused, with a message on the field at fault: a cron expression cron-parser cannot read, one with
 * a seconds field, one with `H` (cron-parser fills it in at random, so the times would change at
 * every read), one running more often than every 5 minutes; a name Intl does not know as a time
 * zone; `endsAt` not after `startsAt`; a window longer than the shortest time between two
 * occurrences (its window would reach into the next occurrence's); a schedule with no occurrence
 * between `startsAt` and `endsAt`. Neither or both of `cron` and `intervalMinutes`, or a missing
 * field, get one issue on the whole value saying which.
 */

export const MIN_INTERVAL_MINUTES = 5;
export const MAX_INTERVAL_MINUTES = 525_600; // a year
export const MAX_WINDOW_MINUTES = 1440; // a day
export const MISSED_POLICIES = ['skip', 'run_once'] as const;
export type MissedPolicy = (typeof MISSED_POLICIES)[number];

const EARLIEST = Date.UTC(1970, 0, 1);
const LATEST = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

const required = (what: string) => (issue: { input: unknown }) => (issue.input === undefined ? `is required: ${what}` : `must be ${what}`);

const INSTANT = 'an ISO 8601 date-time with Z or an offset, e.g. 2026-03-29T02:30:00+01:00';
const instant = z.iso.datetime({ offset: true, error: required(INSTANT) }).refine((s) => {
  const t = Date.parse(s);
  return Number.isNaN(t) || (t >= EARLIEST && t <= LATEST); // NaN: not a date-time, said above
}, 'must be a date-time from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z');

const ZONE = 'an IANA time zone name, e.g. Europe/Amsterdam, America/New_York or UTC';
const timeZone = z
  .string({ error: required(ZONE) })
  .max(64)
  .superRefine((name, ctx) => {
    const problem = textProblem(name) ?? (isTimeZoneName(name) ? null : `is not ${ZONE}`);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** Why `expr` is not a cron expression a schedule may use, or null. */
export function cronProblem(expr: string): string | null {
  const text = textProblem(expr);
  if (text) return text;
  const fields = expr.trim().split(/\s+/).length;
  if (fields !== 5) return `must have 5 fields (minute hour day-of-month month day-of-week), not ${fields}; seconds are not supported`;
  if (/(?<![a-z])h(?![a-z])/i.test(expr)) return 'must not use H (cron-parser picks its value at random)';
  let parsed;
  try {
    parsed = CronExpressionParser.parse(expr);
  } catch (err) {
    return `is not a cron expression: ${(err as Error).message}`;
  }
  const gap = shortestGapMinutes(parsed.fields.minute.values, parsed.fields.hour.values);
  return gap < MIN_INTERVAL_MINUTES
    ? `runs ${gap} minute(s) apart; a schedule may run at most every ${MIN_INTERVAL_MINUTES} minutes`
    : null;
}

/**
 * The shortest time, in wall-clock minutes, between two times a cron's minute and hour sets make:
 * within a day or from one day to the next (exact when two consecutive days match, otherwise a
 * lower bound).
 */
export function shortestGapMinutes(minuteValues: readonly number[], hourValues: readonly number[]): number {
  const m = [...minuteValues].sort((a, b) => a - b);
  const h = [...hourValues].sort((a, b) => a - b);
  const wrap = m[0]! - m.at(-1)!; // from the last minute of one hour to the first of a later hour
  let gap = (24 + h[0]! - h.at(-1)!) * 60 + wrap;
  for (let i = 1; i < m.length; i++) gap = Math.min(gap, m[i]! - m[i - 1]!);
  for (let i = 1; i < h.length; i++) gap = Math.min(gap, (h[i]! - h[i - 1]!) * 60 + wrap);
  return gap;
}

const CRON = 'a 5-field cron expression (minute hour day-of-month month day-of-week), e.g. 30 2 * * 2';
const cron = z
  .string({ error: required(CRON) })
  .max(200)
  .superRefine((expr, ctx) => {
    const problem = cronProblem(expr);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

const common = {
  /** The first instant an occurrence may fall on (inclusive). */
  startsAt: instant,
  /** The last instant an occurrence may fall on (inclusive); none: no end. */
  endsAt: instant.optional(),
  /** How long after its time an occurrence may still start. */
  windowMinutes: z
    .int({ error: required(`a whole number of minutes from 1 to ${MAX_WINDOW_MINUTES}`) })
    .min(1)
    .max(MAX_WINDOW_MINUTES, `must be at most ${MAX_WINDOW_MINUTES} (a day)`),
  /** What becomes of occurrences missed while rcflow was down: see planCatchUp. */
  missedPolicy: z.enum(MISSED_POLICIES, { error: required(MISSED_POLICIES.join(' or ')) }),
};

type Payload = z.core.ParsePayload<{ startsAt: string; endsAt?: string | undefined; windowMinutes: number }>;

/** The checks across fields, once every field is valid on its own. */
function crossCheck(ctx: Payload, timing: 'cron' | 'intervalMinutes', gapMinutes: number, first: () => Date | undefined): void {
  const { startsAt, endsAt, windowMinutes } = ctx.value;
  // continue: the union reports a branch's issues as they are only when none aborts.
  const fail = (path: string, message: string) => {
    ctx.issues.push({ code: 'custom', continue: true, input: ctx.value, path: [path], message });
  };
  if (endsAt !== undefined && Date.parse(endsAt) <= Date.parse(startsAt)) return fail('endsAt', 'must be after startsAt');
  if (windowMinutes > gapMinutes)
    fail('windowMinutes', `must not be longer than the shortest time between two occurrences (${gapMinutes} minutes, from ${timing})`);
  if (!first())
    fail(
      endsAt === undefined ? timing : 'endsAt',
      `leaves no occurrence between startsAt and ${endsAt === undefined ? 'the end of time' : 'endsAt'}`,
    );
}

/** A cron expression on the wall clock of `timeZone`. */
export const cronScheduleSchema = z
  .strictObject({
    /** 5 fields: minute hour day-of-month month day-of-week (cron-parser's syntax, e.g. `30 2 * * 2`). */
    cron,
    /** An IANA time zone name, e.g. `Europe/Amsterdam`, or `UTC`. */
    timeZone,
    ...common,
  })
  .check((ctx) => {
    if (ctx.issues.length > 0) return;
    const { minute, hour } = CronExpressionParser.parse(ctx.value.cron).fields;
    crossCheck(ctx, 'cron', shortestGapMinutes(minute.values, hour.values), () => firstOccurrence(ctx.value));
  });

/** Every `intervalMinutes` of elapsed time from `anchor`. */
export const intervalScheduleSchema = z
  .strictObject({
    intervalMinutes: z
      .int({ error: required(`a whole number of minutes from ${MIN_INTERVAL_MINUTES} to ${MAX_INTERVAL_MINUTES}`) })
      .min(
        MIN_INTERVAL_MINUTES,
        `must be at least ${MIN_INTERVAL_MINUTES}: a schedule may run at most every ${MIN_INTERVAL_MINUTES} minutes`,
      )
      .max(MAX_INTERVAL_MINUTES, `must be at most ${MAX_INTERVAL_MINUTES} (a year)`),
    /** Occurrences fall on anchor + k × intervalMinutes (any whole k), from startsAt on; default: startsAt. */
    anchor: instant.optional(),
    /** Only for showing the times (previewOccurrences); default UTC. */
    timeZone: timeZone.optional(),
    ...common,
  })
  .check((ctx) => {
    if (ctx.issues.length > 0) return;
    crossCheck(ctx, 'intervalMinutes', ctx.value.intervalMinutes, () => firstOccurrence(ctx.value));
  });

export type CronSchedule = z.infer<typeof cronScheduleSchema>;
export type IntervalSchedule = z.infer<typeof intervalScheduleSchema>;
export type ScheduleSpec = CronSchedule | IntervalSchedule;

function firstOccurrence(spec: ScheduleSpec): Date | undefined {
  try {
    return nextOccurrences(spec, new Date(Date.parse(spec.startsAt) - 1), 1)[0];
  } catch {
    return undefined; // cron-parser found no date the expression matches (e.g. `0 0 31 2,4 *`)
  }
}

/** The timing of a schedule: a CronSchedule or an IntervalSchedule (the one whose key it has). */
export const scheduleSpecSchema = z.union([cronScheduleSchema, intervalScheduleSchema], {
  error: (issue) => unionMessage(issue.input),
});

// zod reports a union's failure field by field when exactly one branch fails without aborting (a
// wrong value); a missing field or one of the other branch aborts both, and lands here.
function unionMessage(input: unknown): string {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return 'must be an object';
  const hasCron = 'cron' in input;
  const hasInterval = 'intervalMinutes' in input;
  if (hasCron === hasInterval) return `give either cron (with timeZone) or intervalMinutes${hasCron ? ', not both' : ''}`;
  const result = (hasCron ? cronScheduleSchema : intervalScheduleSchema).safeParse(input);
  return (result.error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
}
