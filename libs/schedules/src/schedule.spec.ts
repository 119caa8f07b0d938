import { z } from 'zod';
import { cronProblem, scheduleSpecSchema, shortestGapMinutes } from './schedule';

const cron = {
  cron: '30 2 * * 2',
  timeZone: 'Europe/Amsterdam',
  startsAt: '2026-01-01T00:00:00Z',
  windowMinutes: 30,
  missedPolicy: 'run_once',
};
const interval = { intervalMinutes: 60, startsAt: '2026-01-01T00:00:00+01:00', windowMinutes: 30, missedPolicy: 'skip' };

/** Every issue as `path: message` (path `.` for the value itself). */
function issues(value: unknown): string[] {
  const r = scheduleSpecSchema.safeParse(value);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.') || '.'}: ${i.message}`);
}

describe('scheduleSpecSchema accepts', () => {
  it.each([
    ['a weekly cron in a European zone', cron],
    ['a cron with every optional part', { ...cron, cron: '0 9 * * MON-FRI', endsAt: '2026-12-31T23:59:59.999Z', windowMinutes: 1440 }],
    ['every 5 minutes, the most often allowed', { ...cron, cron: '*/5 * * * *', timeZone: 'UTC', windowMinutes: 5 }],
    ['a time zone alias', { ...cron, timeZone: 'Asia/Kolkata' }],
    ['UTC', { ...cron, timeZone: 'UTC' }],
    ['an interval', interval],
    [
      'an interval with anchor, zone and end',
      { ...interval, anchor: '2025-06-01T00:20:00Z', timeZone: 'America/New_York', endsAt: '2026-02-01T00:00:00Z' },
    ],
    ['the shortest and longest interval', { ...interval, intervalMinutes: 5, windowMinutes: 5 }],
    ['a year-long interval', { ...interval, intervalMinutes: 525_600, windowMinutes: 1440 }],
  ])('%s', (_, value) => {
    expect(issues(value)).toEqual([]);
    expect(scheduleSpecSchema.parse(value)).toEqual(value);
  });
});

describe('scheduleSpecSchema refuses, naming the field', () => {
  it.each([
    // cron
    [
      'a seconds field',
      { ...cron, cron: '0 30 2 * * 2' },
      'cron: must have 5 fields (minute hour day-of-month month day-of-week), not 6; seconds are not supported',
    ],
    [
      'too few fields',
      { ...cron, cron: '@daily' },
      'cron: must have 5 fields (minute hour day-of-month month day-of-week), not 1; seconds are not supported',
    ],
    ['every minute', { ...cron, cron: '* * * * *' }, 'cron: runs 1 minute(s) apart; a schedule may run at most every 5 minutes'],
    ['every 4 minutes', { ...cron, cron: '*/4 * * * *' }, 'cron: runs 4 minute(s) apart; a schedule may run at most every 5 minutes'],
    [
      'two minutes of an hour 3 apart',
      { ...cron, cron: '0,3 9 * * *' },
      'cron: runs 3 minute(s) apart; a schedule may run at most every 5 minutes',
    ],
    [
      'the end of one hour and the start of the next',
      { ...cron, cron: '0,58 3,4 * * *' },
      'cron: runs 2 minute(s) apart; a schedule may run at most every 5 minutes',
    ],
    ['23:58 and 00:00', { ...cron, cron: '0,58 0,23 * * *' }, 'cron: runs 2 minute(s) apart; a schedule may run at most every 5 minutes'],
    ['H', { ...cron, cron: 'H 2 * * *' }, 'cron: must not use H (cron-parser picks its value at random)'],
    ['H in a step', { ...cron, cron: '0 H/4 * * *' }, 'cron: must not use H (cron-parser picks its value at random)'],
    ['nonsense', { ...cron, cron: 'x y z a b' }, 'cron: is not a cron expression: Invalid characters, got value: x'],
    ['31 February', { ...cron, cron: '0 0 31 2 *' }, 'cron: is not a cron expression: Invalid explicit day of month definition'],
    ['a NUL', { ...cron, cron: '0\u0000 2 * * *' }, 'cron: must not contain NUL (U+0000) (at character 1)'],
    ['a day that never comes', { ...cron, cron: '0 0 31 2,4 *' }, 'cron: leaves no occurrence between startsAt and the end of time'],
    // timeZone
    [
      'an unknown zone',
      { ...cron, timeZone: 'Mars/Base' },
      'timeZone: is not an IANA time zone name, e.g. Europe/Amsterdam, America/New_York or UTC',
    ],
    [
      'an offset for a zone',
      { ...cron, timeZone: '+01:00' },
      'timeZone: is not an IANA time zone name, e.g. Europe/Amsterdam, America/New_York or UTC',
    ],
    [
      'a lone surrogate in the zone',
      { ...cron, timeZone: 'Europe/\ud800' },
      'timeZone: must not contain a lone UTF-16 surrogate (at character 7)',
    ],
    [
      'an unknown zone on an interval',
      { ...interval, timeZone: 'Nowhere' },
      'timeZone: is not an IANA time zone name, e.g. Europe/Amsterdam, America/New_York or UTC',
    ],
    // dates
    [
      'startsAt without an offset',
      { ...cron, startsAt: '2026-01-01T00:00:00' },
      'startsAt: must be an ISO 8601 date-time with Z or an offset, e.g. 2026-03-29T02:30:00+01:00',
    ],
    [
      'startsAt a date only',
      { ...cron, startsAt: '2026-01-01' },
      'startsAt: must be an ISO 8601 date-time with Z or an offset, e.g. 2026-03-29T02:30:00+01:00',
    ],
    [
      'startsAt before 1970',
      { ...cron, startsAt: '1969-12-31T23:59:59Z' },
      'startsAt: must be a date-time from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z',
    ],
    ['endsAt at startsAt', { ...cron, endsAt: '2026-01-01T01:00:00+01:00' }, 'endsAt: must be after startsAt'],
    ['endsAt before startsAt', { ...interval, endsAt: '2025-01-01T00:00:00Z' }, 'endsAt: must be after startsAt'],
    [
      'no occurrence before endsAt',
      { ...cron, endsAt: '2026-01-06T00:00:00Z' },
      'endsAt: leaves no occurrence between startsAt and endsAt',
    ],
    [
      'an anchor that puts the first occurrence after endsAt',
      { ...interval, anchor: '2025-01-01T00:50:00Z', endsAt: '2025-12-31T23:30:00Z' },
      'endsAt: leaves no occurrence between startsAt and endsAt',
    ],
    [
      'a malformed anchor',
      { ...interval, anchor: 'yesterday' },
      'anchor: must be an ISO 8601 date-time with Z or an offset, e.g. 2026-03-29T02:30:00+01:00',
    ],
    // window, interval, policy
    ['a zero window', { ...cron, windowMinutes: 0 }, 'windowMinutes: must be a whole number of minutes from 1 to 1440'],
    ['a window over a day', { ...cron, windowMinutes: 1441 }, 'windowMinutes: must be at most 1440 (a day)'],
    [
      'a window longer than the interval',
      { ...interval, windowMinutes: 61 },
      'windowMinutes: must not be longer than the shortest time between two occurrences (60 minutes, from intervalMinutes)',
    ],
    [
      'a window longer than the cron gap',
      { ...cron, cron: '0 9,17 * * *', windowMinutes: 481 },
      'windowMinutes: must not be longer than the shortest time between two occurrences (480 minutes, from cron)',
    ],
    [
      'an interval under 5 minutes',
      { ...interval, intervalMinutes: 4, windowMinutes: 4 },
      'intervalMinutes: must be at least 5: a schedule may run at most every 5 minutes',
    ],
    ['an interval over a year', { ...interval, intervalMinutes: 525_601 }, 'intervalMinutes: must be at most 525600 (a year)'],
  ])('%s', (_, value, expected) => {
    expect(issues(value)).toEqual([expected]);
  });

  it('reports every field at fault at once', () => {
    expect(issues({ ...cron, cron: '* * * * *', timeZone: 'Mars/Base', windowMinutes: 0 })).toEqual([
      'cron: runs 1 minute(s) apart; a schedule may run at most every 5 minutes',
      'timeZone: is not an IANA time zone name, e.g. Europe/Amsterdam, America/New_York or UTC',
      'windowMinutes: must be a whole number of minutes from 1 to 1440',
    ]);
  });
});

// A missing field or a value of the wrong type fails both branches of the union: zod then reports
// one issue on the whole value, and its message names the field.
describe('scheduleSpecSchema refuses the shape, on the whole value', () => {
  const { timeZone: _tz, ...cronWithoutZone } = cron;
  const { startsAt: _s, ...intervalWithoutStart } = interval;
  it.each([
    [
      'neither cron nor intervalMinutes',
      { startsAt: cron.startsAt, windowMinutes: 5, missedPolicy: 'skip' },
      '.: give either cron (with timeZone) or intervalMinutes',
    ],
    ['both', { ...cron, intervalMinutes: 60 }, '.: give either cron (with timeZone) or intervalMinutes, not both'],
    [
      'cron without timeZone',
      cronWithoutZone,
      '.: timeZone: is required: an IANA time zone name, e.g. Europe/Amsterdam, America/New_York or UTC',
    ],
    [
      'no startsAt',
      intervalWithoutStart,
      '.: startsAt: is required: an ISO 8601 date-time with Z or an offset, e.g. 2026-03-29T02:30:00+01:00',
    ],
    ['a key it does not know', { ...cron, deviceId: 'x' }, '.: Unrecognized key: "deviceId"'],
    ['anchor on a cron', { ...cron, anchor: '2026-01-01T00:00:00Z' }, '.: Unrecognized key: "anchor"'],
    [
      'a number for cron',
      { ...cron, cron: 5 },
      '.: cron: must be a 5-field cron expression (minute hour day-of-month month day-of-week), e.g. 30 2 * * 2',
    ],
    ['a fractional window', { ...cron, windowMinutes: 1.5 }, '.: windowMinutes: must be a whole number of minutes from 1 to 1440'],
    ['an unknown policy', { ...interval, missedPolicy: 'sometimes' }, '.: missedPolicy: must be skip or run_once'],
    [
      'two fields missing',
      { cron: cron.cron },
      '.: timeZone: is required: an IANA time zone name, e.g. Europe/Amsterdam, America/New_York or UTC; startsAt: is required: an ISO 8601 date-time with Z or an offset, e.g. 2026-03-29T02:30:00+01:00; windowMinutes: is required: a whole number of minutes from 1 to 1440; missedPolicy: is required: skip or run_once',
    ],
    ['not an object', [cron], '.: must be an object'],
    ['null', null, '.: must be an object'],
  ])('%s', (_, value, expected) => {
    expect(issues(value)).toEqual([expected]);
  });
});

describe('cronProblem and shortestGapMinutes', () => {
  it('accepts names of days and months, which contain an H', () => {
    expect(cronProblem('0 9 * MAR THU')).toBeNull();
    expect(cronProblem('  0 9 * * *  ')).toBeNull();
  });

  it.each([
    [[0], [9], 1440], // daily
    [[0, 30], [9], 30],
    [[0], [9, 17], 480],
    [[50], [9, 10], 60],
    [[10, 50], [9, 10], 20],
    [[0], [0, 23], 60], // 23:00 to 00:00
    [[0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55], Array.from({ length: 24 }, (_, h) => h), 5],
  ])('minutes %j, hours %j: %d minutes apart at the least', (minutes, hours, gap) => {
    expect(shortestGapMinutes(minutes, hours)).toBe(gap);
  });
});

describe('scheduleSpecSchema as JSON Schema (for the API docs)', () => {
  it('is two closed objects, one with cron and one with intervalMinutes', () => {
    const schema = z.toJSONSchema(scheduleSpecSchema, { io: 'input' }) as {
      anyOf: { required: string[]; additionalProperties: boolean }[];
    };
    expect(schema.anyOf.map((s) => [s.required, s.additionalProperties])).toEqual([
      [['cron', 'timeZone', 'startsAt', 'windowMinutes', 'missedPolicy'], false],
      [['intervalMinutes', 'startsAt', 'windowMinutes', 'missedPolicy'], false],
    ]);
  });
});
