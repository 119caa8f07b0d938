import { CronExpressionParser } from 'cron-parser';
import fc from 'fast-check';
import { nextOccurrences, occurrencesBetween, previewOccurrences } from './occurrences';
import { cronProblem, type CronSchedule, type IntervalSchedule } from './schedule';

const cronSpec = (cron: string, timeZone: string, extra: Partial<CronSchedule> = {}): CronSchedule => ({
  cron,
  timeZone,
  startsAt: '2026-01-01T00:00:00Z',
  windowMinutes: 5,
  missedPolicy: 'skip',
  ...extra,
});
const intervalSpec = (extra: Partial<IntervalSchedule> = {}): IntervalSchedule => ({
  intervalMinutes: 60,
  startsAt: '2026-01-01T00:00:00Z',
  windowMinutes: 5,
  missedPolicy: 'skip',
  ...extra,
});
const d = (iso: string) => new Date(iso);
const isos = (dates: Date[]) => dates.map((x) => x.toISOString());
const preview = (cron: string, zone: string, after: string, count: number) =>
  previewOccurrences(cronSpec(cron, zone), d(after), count).map((p) => `${p.at} ${p.local}`);

describe('a daily 02:30 across daylight saving: once a day, on both change days', () => {
  it('Europe/Amsterdam springs forward (2026-03-29, 02:00 -> 03:00): 02:30 runs at 03:30+02:00', () => {
    expect(preview('30 2 * * *', 'Europe/Amsterdam', '2026-03-27T12:00:00Z', 3)).toEqual([
      '2026-03-28T01:30:00.000Z 2026-03-28T02:30+01:00',
      '2026-03-29T01:30:00.000Z 2026-03-29T03:30+02:00',
      '2026-03-30T00:30:00.000Z 2026-03-30T02:30+02:00',
    ]);
  });

  it('Europe/Amsterdam falls back (2026-10-25, 03:00 -> 02:00): 02:30 runs at its first pass only', () => {
    expect(preview('30 2 * * *', 'Europe/Amsterdam', '2026-10-23T12:00:00Z', 3)).toEqual([
      '2026-10-24T00:30:00.000Z 2026-10-24T02:30+02:00',
      '2026-10-25T00:30:00.000Z 2026-10-25T02:30+02:00',
      '2026-10-26T01:30:00.000Z 2026-10-26T02:30+01:00',
    ]);
  });

  it('America/New_York springs forward (2026-03-08): 02:30 runs at 03:30-04:00', () => {
    expect(preview('30 2 * * *', 'America/New_York', '2026-03-06T12:00:00Z', 3)).toEqual([
      '2026-03-07T07:30:00.000Z 2026-03-07T02:30-05:00',
      '2026-03-08T07:30:00.000Z 2026-03-08T03:30-04:00',
      '2026-03-09T06:30:00.000Z 2026-03-09T02:30-04:00',
    ]);
  });

  it('America/New_York falls back (2026-11-01, 02:00 -> 01:00): 02:30 comes once; 01:30, shown twice, runs at its first pass', () => {
    expect(preview('30 2 * * *', 'America/New_York', '2026-10-30T12:00:00Z', 3)).toEqual([
      '2026-10-31T06:30:00.000Z 2026-10-31T02:30-04:00',
      '2026-11-01T07:30:00.000Z 2026-11-01T02:30-05:00',
      '2026-11-02T07:30:00.000Z 2026-11-02T02:30-05:00',
    ]);
    expect(preview('30 1 * * *', 'America/New_York', '2026-10-30T12:00:00Z', 3)).toEqual([
      '2026-10-31T05:30:00.000Z 2026-10-31T01:30-04:00',
      '2026-11-01T05:30:00.000Z 2026-11-01T01:30-04:00',
      '2026-11-02T06:30:00.000Z 2026-11-02T01:30-05:00',
    ]);
  });

  it('Australia/Lord_Howe shifts by 30 minutes (2026-04-05 02:00 -> 01:30, 2026-10-04 02:00 -> 02:30)', () => {
    expect(preview('45 1 * * *', 'Australia/Lord_Howe', '2026-04-03T12:00:00Z', 3)).toEqual([
      '2026-04-03T14:45:00.000Z 2026-04-04T01:45+11:00',
      '2026-04-04T14:45:00.000Z 2026-04-05T01:45+11:00',
      '2026-04-05T15:15:00.000Z 2026-04-06T01:45+10:30',
    ]);
    // cron-parser 5.10.3's own tz mode throws "loop limit exceeded" here.
    expect(preview('0 2 * * *', 'Australia/Lord_Howe', '2026-04-03T12:00:00Z', 3)).toEqual([
      '2026-04-03T15:00:00.000Z 2026-04-04T02:00+11:00',
      '2026-04-04T15:30:00.000Z 2026-04-05T02:00+10:30',
      '2026-04-05T15:30:00.000Z 2026-04-06T02:00+10:30',
    ]);
    // cron-parser 5.10.3's own tz mode has no run on 2026-10-04.
    expect(preview('15 2 * * *', 'Australia/Lord_Howe', '2026-10-02T12:00:00Z', 3)).toEqual([
      '2026-10-02T15:45:00.000Z 2026-10-03T02:15+10:30',
      '2026-10-03T15:45:00.000Z 2026-10-04T02:45+11:00',
      '2026-10-04T15:15:00.000Z 2026-10-05T02:15+11:00',
    ]);
  });
});

describe('wall times the clock skips or repeats, beyond the daily case', () => {
  it('merges a skipped time with the real time it lands on (02:30 and 03:30 on the spring-forward day)', () => {
    expect(preview('30 2,3 * * *', 'Europe/Amsterdam', '2026-03-28T12:00:00Z', 3)).toEqual([
      '2026-03-29T01:30:00.000Z 2026-03-29T03:30+02:00',
      '2026-03-30T00:30:00.000Z 2026-03-30T02:30+02:00',
      '2026-03-30T01:30:00.000Z 2026-03-30T03:30+02:00',
    ]);
  });

  it('keeps order when a skipped time lands after a real one (Lord_Howe 02:20 -> 02:50, after 02:47)', () => {
    expect(preview('20,47 2 * * *', 'Australia/Lord_Howe', '2026-10-03T12:00:00Z', 3)).toEqual([
      '2026-10-03T15:47:00.000Z 2026-10-04T02:47+11:00',
      '2026-10-03T15:50:00.000Z 2026-10-04T02:50+11:00',
      '2026-10-04T15:20:00.000Z 2026-10-05T02:20+11:00',
    ]);
  });

  it('moves a time skipped just before midnight to the next date (America/Nuuk, 2026-03-28 23:00 -> 00:00)', () => {
    expect(preview('10 23 * * *', 'America/Nuuk', '2026-03-27T12:00:00Z', 3)).toEqual([
      '2026-03-28T01:10:00.000Z 2026-03-27T23:10-02:00',
      '2026-03-29T01:10:00.000Z 2026-03-29T00:10-01:00',
      '2026-03-30T00:10:00.000Z 2026-03-29T23:10-01:00',
    ]);
  });

  it('runs an every-15-minutes cron once through the repeated hour, and not in the skipped one', () => {
    expect(preview('*/15 * * * *', 'Europe/Amsterdam', '2026-10-25T00:35:00Z', 3)).toEqual([
      '2026-10-25T00:45:00.000Z 2026-10-25T02:45+02:00',
      '2026-10-25T02:00:00.000Z 2026-10-25T03:00+01:00',
      '2026-10-25T02:15:00.000Z 2026-10-25T03:15+01:00',
    ]);
    expect(preview('*/15 * * * *', 'Europe/Amsterdam', '2026-03-29T00:35:00Z', 3)).toEqual([
      '2026-03-29T00:45:00.000Z 2026-03-29T01:45+01:00',
      '2026-03-29T01:00:00.000Z 2026-03-29T03:00+02:00',
      '2026-03-29T01:15:00.000Z 2026-03-29T03:15+02:00',
    ]);
  });
});

describe('bounds', () => {
  const spec = cronSpec('0 9 * * *', 'UTC', { startsAt: '2026-05-01T09:00:00Z', endsAt: '2026-05-04T09:00:00Z' });

  it('starts at startsAt inclusive, ends at endsAt inclusive, and is strictly after `after`', () => {
    expect(isos(nextOccurrences(spec, d('2020-01-01T00:00:00Z'), 10))).toEqual([
      '2026-05-01T09:00:00.000Z',
      '2026-05-02T09:00:00.000Z',
      '2026-05-03T09:00:00.000Z',
      '2026-05-04T09:00:00.000Z',
    ]);
    expect(isos(nextOccurrences(spec, d('2026-05-02T09:00:00Z'), 10))).toEqual(['2026-05-03T09:00:00.000Z', '2026-05-04T09:00:00.000Z']);
    expect(isos(nextOccurrences(spec, d('2026-05-02T08:59:59.999Z'), 1))).toEqual(['2026-05-02T09:00:00.000Z']);
    expect(nextOccurrences(spec, d('2026-05-04T09:00:00Z'), 10)).toEqual([]);
  });

  it('occurrencesBetween takes (from, to] and at most `limit`', () => {
    expect(isos(occurrencesBetween(spec, d('2026-05-01T09:00:00Z'), d('2026-05-03T09:00:00Z'), 10))).toEqual([
      '2026-05-02T09:00:00.000Z',
      '2026-05-03T09:00:00.000Z',
    ]);
    expect(isos(occurrencesBetween(spec, d('2026-05-01T09:00:00Z'), d('2026-05-03T08:59:59.999Z'), 10))).toEqual([
      '2026-05-02T09:00:00.000Z',
    ]);
    expect(isos(occurrencesBetween(spec, d('2026-01-01T00:00:00Z'), d('2027-01-01T00:00:00Z'), 2))).toEqual([
      '2026-05-01T09:00:00.000Z',
      '2026-05-02T09:00:00.000Z',
    ]);
    expect(occurrencesBetween(spec, d('2026-01-01T00:00:00Z'), d('2027-01-01T00:00:00Z'), 0)).toEqual([]);
    expect(occurrencesBetween(spec, d('2026-05-03T00:00:00Z'), d('2026-05-01T00:00:00Z'), 5)).toEqual([]);
  });

  it('refuses a count that is not a whole number >= 0', () => {
    expect(() => nextOccurrences(spec, d('2026-01-01T00:00:00Z'), -1)).toThrow('limit must be a whole number >= 0, got -1');
    expect(() => occurrencesBetween(spec, d('2026-01-01T00:00:00Z'), d('2027-01-01T00:00:00Z'), 1.5)).toThrow(RangeError);
  });
});

describe('interval schedules', () => {
  it('fall every intervalMinutes from startsAt by default', () => {
    expect(isos(nextOccurrences(intervalSpec({ intervalMinutes: 90 }), d('2025-12-31T00:00:00Z'), 3))).toEqual([
      '2026-01-01T00:00:00.000Z',
      '2026-01-01T01:30:00.000Z',
      '2026-01-01T03:00:00.000Z',
    ]);
  });

  it('fall on anchor + k x interval, before or after startsAt, and stop at endsAt', () => {
    const spec = intervalSpec({
      intervalMinutes: 60,
      anchor: '2025-06-01T00:20:00Z',
      startsAt: '2026-01-01T00:00:00Z',
      endsAt: '2026-01-01T02:20:00Z',
    });
    expect(isos(nextOccurrences(spec, d('2025-01-01T00:00:00Z'), 10))).toEqual([
      '2026-01-01T00:20:00.000Z',
      '2026-01-01T01:20:00.000Z',
      '2026-01-01T02:20:00.000Z',
    ]);
    const later = intervalSpec({ intervalMinutes: 60, anchor: '2027-01-01T00:20:00+01:00' });
    expect(isos(nextOccurrences(later, d('2026-01-01T00:30:00Z'), 2))).toEqual(['2026-01-01T01:20:00.000Z', '2026-01-01T02:20:00.000Z']);
  });

  it('ignore daylight saving and are shown on the given clock, or UTC', () => {
    const spec = intervalSpec({ intervalMinutes: 60, startsAt: '2026-03-29T00:00:00Z', timeZone: 'Europe/Amsterdam' });
    expect(previewOccurrences(spec, d('2026-03-29T00:00:00Z'), 2)).toEqual([
      { at: '2026-03-29T01:00:00.000Z', local: '2026-03-29T03:00+02:00' },
      { at: '2026-03-29T02:00:00.000Z', local: '2026-03-29T04:00+02:00' },
    ]);
    expect(previewOccurrences(intervalSpec(), d('2026-01-01T00:00:00Z'), 1)).toEqual([
      { at: '2026-01-01T01:00:00.000Z', local: '2026-01-01T01:00+00:00' },
    ]);
  });
});

// ---- properties ----

/** Zones with daylight saving, several with unusual shifts or times of day. */
const ZONES = [
  'Europe/Amsterdam',
  'America/New_York',
  'Australia/Lord_Howe', // 30-minute shift
  'Australia/Sydney',
  'Pacific/Chatham', // +12:45 / +13:45, changes at 02:45
  'America/Santiago', // changes at midnight
  'America/Havana', // changes at midnight
  'America/St_Johns', // -03:30 / -02:30
  'Europe/Dublin', // "negative" daylight saving in the tz data
  'America/Nuuk', // changes at 22:00 / 23:00 local
];

const clocks = new Map<string, Intl.DateTimeFormat>();
/** The local clock of `zone` at `t` as `YYYY-MM-DD HH:mm:ss`, straight from Intl. */
function localClock(t: number, zone: string): string {
  let f = clocks.get(zone);
  if (!f)
    clocks.set(zone, (f = new Intl.DateTimeFormat('sv-SE', { timeZone: zone, hourCycle: 'h23', dateStyle: 'short', timeStyle: 'medium' })));
  return f.format(t);
}
const clockToWall = (clock: string) => Date.parse(`${clock.replace(' ', 'T')}Z`);
const offsetOf = (t: number, zone: string) => clockToWall(localClock(t, zone)) - Math.floor(t / 1000) * 1000;

/** Instants in [from, to) where `zone` changes its offset: days sampled, then bisected to the minute. */
function offsetChanges(zone: string, from: number, to: number): number[] {
  const out: number[] = [];
  for (let day = from; day < to; day += 86_400_000) {
    let [lo, hi] = [day, day + 86_400_000];
    if (offsetOf(lo, zone) === offsetOf(hi, zone)) continue;
    while (hi - lo > 60_000) {
      const mid = lo + Math.floor((hi - lo) / 120_000) * 60_000;
      if (offsetOf(mid, zone) === offsetOf(lo, zone)) lo = mid;
      else hi = mid;
    }
    out.push(hi);
  }
  return out;
}
const changesByZone = new Map(
  ZONES.map((z) => [z, offsetChanges(z, Date.parse('2026-01-01T00:00:00Z'), Date.parse('2027-01-01T00:00:00Z'))]),
);

const step = (max: number) => fc.constantFrom(...[5, 10, 15, 20, 30].filter((s) => s <= max));
const minuteField = fc.oneof(
  fc.integer({ min: 0, max: 59 }).map(String),
  fc.uniqueArray(fc.integer({ min: 0, max: 59 }), { minLength: 2, maxLength: 4 }).map((ms) => ms.sort((a, b) => a - b).join(',')),
  step(30).map((s) => `*/${s}`),
  fc.tuple(fc.integer({ min: 0, max: 29 }), step(30)).map(([a, s]) => `${a}-59/${s}`),
);
const hourField = fc.oneof(
  fc.constant('*'),
  fc.integer({ min: 0, max: 23 }).map(String),
  fc.uniqueArray(fc.integer({ min: 0, max: 23 }), { minLength: 2, maxLength: 4 }).map((hs) => hs.sort((a, b) => a - b).join(',')),
  fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 1, max: 4 })).map(([a, s]) => `${a}-23/${s}`),
);
const dayFields = fc.constantFrom('* * *', '* * 0', '* * 1-5', '* * 6,0', '1,15 * *', '*/2 * *', '28-31 * *');
const validCron = fc
  .tuple(minuteField, hourField, dayFields)
  .map(([m, h, days]) => `${m} ${h} ${days}`)
  .filter((c) => cronProblem(c) === null);

/** A zone and an instant from two days before one of its 2026 offset changes to one day after. */
const nearChange = fc.constantFrom(...ZONES).chain((zone) =>
  fc.record({
    zone: fc.constant(zone),
    after: fc
      .tuple(fc.constantFrom(...changesByZone.get(zone)!), fc.integer({ min: -48 * 60, max: 24 * 60 }))
      .map(([c, m]) => c + m * 60_000),
  }),
);

/** Cases the properties always try: a gap just before midnight, a 30-minute gap, a repeated hour. */
const EXAMPLES: [string, { zone: string; after: number }][] = [
  ['10 23 * * *', { zone: 'America/Nuuk', after: Date.parse('2026-03-27T12:00:00Z') }],
  ['20,47 2 * * *', { zone: 'Australia/Lord_Howe', after: Date.parse('2026-10-02T12:00:00Z') }],
  ['*/5 * * * *', { zone: 'Europe/Amsterdam', after: Date.parse('2026-10-24T23:00:00Z') }],
];

/** How many wall times the cron names on the local date `date` (YYYY-MM-DD), counted by cron-parser in UTC. */
function allowedOn(cron: string, date: string): number {
  const start = Date.parse(`${date}T00:00:00Z`);
  const walls = CronExpressionParser.parse(cron, { tz: 'UTC', currentDate: new Date(start - 1) });
  let n = 0;
  while (walls.next().getTime() < start + 86_400_000) n++;
  return n;
}

describe('occurrences (properties)', () => {
  it('walks across the two 2026 offset changes of every zone', () => {
    for (const zone of ZONES) expect(changesByZone.get(zone)).toHaveLength(2);
    expect(isos(changesByZone.get('Europe/Amsterdam')!.map((t) => new Date(t)))).toEqual([
      '2026-03-29T01:00:00.000Z',
      '2026-10-25T01:00:00.000Z',
    ]);
    expect(isos(changesByZone.get('Australia/Lord_Howe')!.map((t) => new Date(t)))).toEqual([
      '2026-04-04T15:00:00.000Z',
      '2026-10-03T15:30:00.000Z',
    ]);
  });

  it('are strictly increasing, each a time the cron names, and no local date has more than the cron names for it', () => {
    fc.assert(
      fc.property(validCron, nearChange, (cron, { zone, after }) => {
        const spec = cronSpec(cron, zone, { startsAt: '2025-01-01T00:00:00Z' });
        const times = occurrencesBetween(spec, new Date(after), new Date(after + 72 * 3_600_000), 1000).map((x) => x.getTime());
        for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThan(times[i - 1]);
        const names = CronExpressionParser.parse(cron, { tz: 'UTC' });
        const perDate = new Map<string, number>();
        for (const t of times) {
          // The wall time it was named for: what the clock shows, or (moved out of a gap) that reading
          // with the offset from before the gap. A gap just before midnight (America/Nuuk) moves a
          // time to the next date; it still counts for the date it was named for.
          const shown = clockToWall(localClock(t, zone));
          const named = names.includesDate(new Date(shown)) ? shown : t + offsetOf(t - 86_400_000, zone);
          expect(names.includesDate(new Date(named))).toBe(true);
          const date = new Date(named).toISOString().slice(0, 10);
          perDate.set(date, (perDate.get(date) ?? 0) + 1);
        }
        for (const [date, n] of perDate) expect(n).toBeLessThanOrEqual(allowedOn(cron, date));
      }),
      { numRuns: 100, examples: EXAMPLES },
    );
  }, 60_000);

  it('are exactly the wall times the cron names, each at its first pass on the clock or, when skipped, later by the gap', () => {
    fc.assert(
      fc.property(validCron, nearChange, (cron, { zone, after }) => {
        const to = after + 48 * 3_600_000;
        const found = occurrencesBetween(cronSpec(cron, zone, { startsAt: '2025-01-01T00:00:00Z' }), new Date(after), new Date(to), 1000);
        // Oracle: each wall time cron-parser names (UTC mode), placed with Intl's clock readings.
        const expected = new Set<number>();
        const offset = (t: number) => offsetOf(t, zone);
        const walls = CronExpressionParser.parse(cron, { tz: 'UTC', currentDate: new Date(after - 2 * 86_400_000) });
        for (let w = walls.next().getTime(); w < to + 2 * 86_400_000; w = walls.next().getTime()) {
          const candidates = [offset(w - 86_400_000), offset(w + 86_400_000)]
            .map((o) => w - o)
            .filter((t) => clockToWall(localClock(t, zone)) === w);
          const t = candidates.length > 0 ? Math.min(...candidates) : w - offset(w - 86_400_000);
          if (t > after && t <= to) expected.add(t);
        }
        expect(isos(found)).toEqual(isos([...expected].sort((a, b) => a - b).map((t) => new Date(t))));
      }),
      { numRuns: 60, examples: EXAMPLES },
    );
  }, 60_000);

  it("agree with cron-parser's own tz mode for fixed hours in whole-hour zones", () => {
    const fixedHours = fc.tuple(
      fc.integer({ min: 0, max: 59 }),
      fc.uniqueArray(fc.integer({ min: 0, max: 23 }), { minLength: 1, maxLength: 3 }),
      fc.constantFrom('Europe/Amsterdam', 'America/New_York', 'Europe/Dublin'),
    );
    fc.assert(
      fc.property(fixedHours, ([minute, hours, zone]) => {
        const cron = `${minute} ${hours.sort((a, b) => a - b).join(',')} * * *`;
        // Across the 2026 changes of all three zones: March 8 and 29, October 25 and November 1.
        for (const [start, days] of [
          ['2026-03-01T00:00:00Z', 35],
          ['2026-10-20T00:00:00Z', 14],
        ] as const) {
          const theirs = CronExpressionParser.parse(cron, { tz: zone, currentDate: d(start) })
            .take(days * hours.length)
            .map((c) => c.toDate().toISOString());
          expect(isos(nextOccurrences(cronSpec(cron, zone), d(start), theirs.length))).toEqual(theirs);
        }
      }),
      { numRuns: 25 },
    );
  }, 60_000);
});
