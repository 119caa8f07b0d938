/*
 * Wall clocks of IANA time zones, from the zone data Node's ICU carries (Intl): what a zone's clock
 * shows at an instant, and the instant at which it shows a given time. The second is where daylight
 * saving bites; it follows RFC 5545 (iCalendar, 3.3.5), as Temporal's 'compatible' and cron-parser
 * (for whole-hour shifts) do: a time the clock shows twice is its first pass, and a time the clock
 * skips is read with the offset in force before the gap, i.e. moved later by the gap's length
 * (02:30 on a day that jumps from 02:00 to 03:00 is 03:30).
 *
 * A "wall time" is a number of milliseconds whose UTC reading has the digits of the local clock.
 * Assumed throughout: a zone changes its offset at most once in four days (daylight saving changes
 * it twice a year). The results are as good as the tz data of the Node that runs them.
 */

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Whether `name` is a time zone Intl knows by name (IANA names and their aliases, `UTC`); offsets such as `+01:00` are not. */
export function isTimeZoneName(name: string): boolean {
  if (!/^[A-Za-z]/.test(name)) return false;
  try {
    formatter(name);
    return true;
  } catch {
    return false;
  }
}

/** How far `timeZone`'s clock is ahead of UTC at `instant` (whole seconds), asked of Intl. */
export function intlOffsetAt(instant: number, timeZone: string): number {
  const part: Partial<Record<Intl.DateTimeFormatPartTypes, number>> = {};
  for (const p of formatter(timeZone).formatToParts(instant)) part[p.type] = Number(p.value);
  const wall = Date.UTC(part.year!, part.month! - 1, part.day, part.hour, part.minute, part.second);
  return wall - (instant - (((instant % 1000) + 1000) % 1000));
}

/** A UTC day of one zone: its offset at the start, and from `switchAt` on (the day's end when it does not change). */
interface DayOffsets {
  start: number;
  end: number;
  switchAt: number;
}

// Intl is slow (tens of microseconds a call) and a cron every 5 minutes maps hundreds of wall
// times a day, so offsets are asked once per zone and UTC day, plus a bisection on a day the
// offset changes. Bounded: a zone's days are dropped all at once past MAX_CACHED_DAYS.
const MAX_CACHED_DAYS = 4096;
const offsetDays = new Map<string, Map<number, DayOffsets>>();

function dayOffsets(day: number, timeZone: string): DayOffsets {
  let lo = day * DAY;
  let hi = lo + DAY;
  const start = intlOffsetAt(lo, timeZone);
  const end = intlOffsetAt(hi, timeZone);
  if (start === end) return { start, end, switchAt: hi };
  // The first whole second with the new offset (one change a day at most).
  while (hi - lo > 1000) {
    const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
    if (intlOffsetAt(mid, timeZone) === start) lo = mid;
    else hi = mid;
  }
  return { start, end, switchAt: hi };
}

/** How far `timeZone`'s clock is ahead of UTC at `instant`, in milliseconds. */
export function offsetAt(instant: number, timeZone: string): number {
  let days = offsetDays.get(timeZone);
  if (!days) offsetDays.set(timeZone, (days = new Map<number, DayOffsets>()));
  const day = Math.floor(instant / DAY);
  let offsets = days.get(day);
  if (!offsets) {
    if (days.size >= MAX_CACHED_DAYS) days.clear();
    days.set(day, (offsets = dayOffsets(day, timeZone)));
  }
  return instant < offsets.switchAt ? offsets.start : offsets.end;
}

/**
 * The instant at which `timeZone`'s clock shows `wall`: the first of two in a fall-back overlap, and
 * for a time skipped by a spring-forward gap the instant `wall` denotes with the offset from before
 * the gap.
 */
export function instantOfWallTime(wall: number, timeZone: string): number {
  const before = offsetAt(wall - DAY, timeZone);
  const after = offsetAt(wall + DAY, timeZone);
  const candidates = before === after ? [wall - before] : [wall - before, wall - after];
  const shown = candidates.filter((t) => offsetAt(t, timeZone) === wall - t);
  return shown.length > 0 ? Math.min(...shown) : wall - before;
}

/** `YYYY-MM-DDTHH:mm±HH:MM`: `instant` on `timeZone`'s clock, with the offset in force. */
export function formatLocal(instant: number, timeZone: string): string {
  const offset = Math.round(offsetAt(instant, timeZone) / MINUTE);
  const abs = Math.abs(offset);
  const hhmm = `${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return `${new Date(instant + offset * MINUTE).toISOString().slice(0, 16)}${offset < 0 ? '-' : '+'}${hhmm}`;
}
