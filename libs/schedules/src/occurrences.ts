import { CronExpressionParser } from 'cron-parser';
import type { ScheduleSpec } from './schedule';
import { formatLocal, instantOfWallTime, offsetAt } from './zone';

/*
 * When a schedule's occurrences fall, as UTC instants, never before startsAt nor after endsAt.
 *
 * A cron schedule is a set of wall times in its zone. cron-parser walks the wall times (in its UTC
 * mode, where no clock ever jumps) and ./zone turns each into an instant: a time the clock shows
 * twice runs once, at its first pass; a time the clock skips runs once, later by the gap's length
 * (RFC 5545). So a daily 02:30 runs exactly once on both days of a daylight-saving change. Two wall
 * times that land on one instant (02:30 skipped and 03:30 on a day that jumps from 02:00 to 03:00)
 * make one occurrence. Sub-hourly crons do not run twice through the repeated hour either: every
 * 15 minutes skips the second pass of 02:00-02:59 on the day the clock falls back. A gap just
 * before midnight (America/Nuuk: 23:00 -> 00:00) moves its times to the next date. An interval
 * schedule is elapsed time and ignores the zone.
 *
 * Not cron-parser's own `tz` option: 5.10.3 gets Australia/Lord_Howe's 30-minute shift wrong
 * (`0 2 * * *` from 2026-04-03 throws "loop limit exceeded"; `15 2 * * *` has no run on
 * 2026-10-04) and runs sub-hourly crons through a repeated hour twice in other zones.
 *
 * The functions expect a spec scheduleSpecSchema accepted (a cron that never matches makes
 * cron-parser throw); they do no I/O, and keep no state but ./zone's cache of offsets.
 */

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const END_OF_TIME = 8.64e15;

/**
 * The cron's instants from `from` on, ascending, each once. A wall time `w` lands on `w - offset`,
 * with the zone's offset a day before or a day after `w` (./zone), so the offsets sampled below
 * bound where wall times land, given that a zone changes its offset at most once in four days.
 * cron-parser takes tens of microseconds a step: the walk starts just early enough and yields as
 * soon as no later wall time can land before the instant in hand.
 */
function* cronInstants(cron: string, timeZone: string, from: number): Generator<number> {
  const offset = (t: number) => offsetAt(t, timeZone);
  // Earlier wall times land before `from`.
  const start = from + Math.min(offset(from - 2 * DAY), offset(from + 2 * DAY));
  const walls = CronExpressionParser.parse(cron, { tz: 'UTC', currentDate: new Date(start - 1) });
  const pending: number[] = []; // landed, not yet yielded, ascending: a gap moves wall times past later ones
  let last = -Infinity;
  for (;;) {
    const wall = walls.next().getTime();
    const t = instantOfWallTime(wall, timeZone);
    let i = pending.length;
    while (i > 0 && pending[i - 1]! > t) i--;
    pending.splice(i, 0, t);
    // Later wall times land after this.
    const settled = wall - Math.max(offset(wall - DAY), offset(wall + 3 * DAY));
    while (pending.length > 0 && pending[0]! <= settled) {
      const next = pending.shift()!;
      if (next >= from && next > last) yield (last = next);
    }
  }
}

function* intervalInstants(anchor: number, step: number, from: number): Generator<number> {
  for (let k = Math.ceil((from - anchor) / step); ; k++) yield anchor + k * step;
}

/** The schedule's instants after `after` (exclusive) and from startsAt on, ascending, up to endsAt. */
function* instants(spec: ScheduleSpec, after: number): Generator<number> {
  const startsAt = Date.parse(spec.startsAt);
  const endsAt = spec.endsAt === undefined ? END_OF_TIME : Date.parse(spec.endsAt);
  const from = Math.max(after + 1, startsAt);
  const source =
    'cron' in spec
      ? cronInstants(spec.cron, spec.timeZone, from)
      : intervalInstants(Date.parse(spec.anchor ?? spec.startsAt), Math.round(spec.intervalMinutes * MINUTE), from);
  for (const t of source) {
    if (t > endsAt) return;
    yield t;
  }
}

function checkCount(name: string, n: number) {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${name} must be a whole number >= 0, got ${n}`);
}

/**
 * The schedule's occurrences in (fromExclusive, toInclusive], at most `limit`, ascending, in UTC.
 * Exactly `limit` of them means there may be more.
 */
export function occurrencesBetween(spec: ScheduleSpec, fromExclusive: Date, toInclusive: Date, limit: number): Date[] {
  checkCount('limit', limit);
  const out: Date[] = [];
  if (limit === 0) return out;
  for (const t of instants(spec, fromExclusive.getTime())) {
    if (t > toInclusive.getTime()) break;
    out.push(new Date(t));
    if (out.length === limit) break;
  }
  return out;
}

/** The next `count` occurrences strictly after `after` (fewer when endsAt comes first), ascending, in UTC. */
export function nextOccurrences(spec: ScheduleSpec, after: Date, count: number): Date[] {
  return occurrencesBetween(spec, after, new Date(END_OF_TIME), count);
}

/** The zone a schedule's times are shown in: its own, or UTC for an interval schedule without one. */
export function displayZone(spec: ScheduleSpec): string {
  return spec.timeZone ?? 'UTC';
}

export interface PreviewedOccurrence {
  /** The instant in UTC, ISO 8601 (`2026-03-29T01:30:00.000Z`). */
  at: string;
  /** The same instant on the schedule's clock, with its offset (`2026-03-29T03:30+02:00`). */
  local: string;
}

/** The next `count` occurrences after `now`, in UTC and on the schedule's clock. */
export function previewOccurrences(spec: ScheduleSpec, now: Date, count: number): PreviewedOccurrence[] {
  const zone = displayZone(spec);
  return nextOccurrences(spec, now, count).map((d) => ({ at: d.toISOString(), local: formatLocal(d.getTime(), zone) }));
}
