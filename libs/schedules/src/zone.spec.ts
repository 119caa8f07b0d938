import fc from 'fast-check';
import { formatLocal, instantOfWallTime, intlOffsetAt, isTimeZoneName, offsetAt } from './zone';

const at = (iso: string) => Date.parse(iso);
const wall = (digits: string) => Date.parse(`${digits}Z`); // the local clock's digits, read as UTC
const iso = (t: number) => new Date(t).toISOString();

describe('isTimeZoneName', () => {
  it.each(['UTC', 'Etc/UTC', 'Europe/Amsterdam', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kolkata', 'Asia/Calcutta', 'US/Eastern'])(
    'knows %s',
    (name) => expect(isTimeZoneName(name)).toBe(true),
  );
  it.each(['', 'Mars/Base', 'Europe/Amsterdam ', '+01:00', '-05:00', 'Z', '01:00'])('refuses %j', (name) =>
    expect(isTimeZoneName(name)).toBe(false),
  );
});

describe('offsetAt', () => {
  it('reads the offsets on both sides of a change, to the second', () => {
    // Europe/Amsterdam springs forward at 2026-03-29T01:00:00Z and falls back at 2026-10-25T01:00:00Z.
    expect(offsetAt(at('2026-03-29T00:59:59.999Z'), 'Europe/Amsterdam')).toBe(3_600_000);
    expect(offsetAt(at('2026-03-29T01:00:00Z'), 'Europe/Amsterdam')).toBe(7_200_000);
    expect(offsetAt(at('2026-10-25T00:59:59Z'), 'Europe/Amsterdam')).toBe(7_200_000);
    expect(offsetAt(at('2026-10-25T01:00:00Z'), 'Europe/Amsterdam')).toBe(3_600_000);
    // Australia/Lord_Howe: +10:30 to +11 at 2026-10-03T15:30:00Z.
    expect(offsetAt(at('2026-10-03T15:29:59Z'), 'Australia/Lord_Howe')).toBe(37_800_000);
    expect(offsetAt(at('2026-10-03T15:30:00Z'), 'Australia/Lord_Howe')).toBe(39_600_000);
    expect(offsetAt(at('2026-07-01T00:00:00Z'), 'America/New_York')).toBe(-14_400_000);
    expect(offsetAt(at('2026-07-01T00:00:00Z'), 'UTC')).toBe(0);
  });

  it('answers what Intl answers, at any instant and near every change (the per-day cache and its bisection)', () => {
    const zones = [
      'Europe/Amsterdam',
      'America/New_York',
      'Australia/Lord_Howe',
      'Pacific/Chatham',
      'America/Santiago',
      'Africa/Casablanca',
    ];
    const changes = [
      '2026-03-29T01:00:00Z',
      '2026-10-25T01:00:00Z',
      '2026-03-08T07:00:00Z',
      '2026-11-01T06:00:00Z',
      '2026-04-04T15:00:00Z',
      '2026-10-03T15:30:00Z',
    ].map(at);
    const instant = fc.oneof(
      fc.integer({ min: at('2020-01-01T00:00:00Z'), max: at('2035-01-01T00:00:00Z') }),
      fc.tuple(fc.constantFrom(...changes), fc.integer({ min: -7_200_000, max: 7_200_000 })).map(([c, d]) => c + d),
    );
    fc.assert(
      fc.property(fc.constantFrom(...zones), instant, (zone, t) => {
        expect(offsetAt(t, zone)).toBe(intlOffsetAt(t, zone));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('instantOfWallTime (RFC 5545)', () => {
  it('maps an ordinary wall time to its one instant', () => {
    expect(iso(instantOfWallTime(wall('2026-07-01T09:00:00'), 'Europe/Amsterdam'))).toBe('2026-07-01T07:00:00.000Z');
    expect(iso(instantOfWallTime(wall('2026-07-01T09:00:00'), 'UTC'))).toBe('2026-07-01T09:00:00.000Z');
  });

  it('maps a time the clock shows twice to its first pass', () => {
    expect(iso(instantOfWallTime(wall('2026-10-25T02:30:00'), 'Europe/Amsterdam'))).toBe('2026-10-25T00:30:00.000Z');
    expect(iso(instantOfWallTime(wall('2026-11-01T01:30:00'), 'America/New_York'))).toBe('2026-11-01T05:30:00.000Z');
    expect(iso(instantOfWallTime(wall('2026-04-05T01:45:00'), 'Australia/Lord_Howe'))).toBe('2026-04-04T14:45:00.000Z');
  });

  it('moves a time the clock skips later by the gap', () => {
    expect(iso(instantOfWallTime(wall('2026-03-29T02:30:00'), 'Europe/Amsterdam'))).toBe('2026-03-29T01:30:00.000Z'); // 03:30+02:00
    expect(iso(instantOfWallTime(wall('2026-03-08T02:30:00'), 'America/New_York'))).toBe('2026-03-08T07:30:00.000Z'); // 03:30-04:00
    expect(iso(instantOfWallTime(wall('2026-10-04T02:15:00'), 'Australia/Lord_Howe'))).toBe('2026-10-03T15:45:00.000Z'); // 02:45+11:00
  });
});

describe('formatLocal', () => {
  it.each([
    ['2026-03-29T01:30:00Z', 'Europe/Amsterdam', '2026-03-29T03:30+02:00'],
    ['2026-03-29T00:59:00Z', 'Europe/Amsterdam', '2026-03-29T01:59+01:00'],
    ['2026-11-01T06:30:00Z', 'America/New_York', '2026-11-01T01:30-05:00'],
    ['2026-10-03T15:45:00Z', 'Australia/Lord_Howe', '2026-10-04T02:45+11:00'],
    ['2026-01-01T00:00:00Z', 'Pacific/Chatham', '2026-01-01T13:45+13:45'],
    ['2026-01-01T00:00:00Z', 'America/St_Johns', '2025-12-31T20:30-03:30'],
    ['2026-01-01T00:00:59.999Z', 'UTC', '2026-01-01T00:00+00:00'],
  ])('shows %s in %s as %s', (instant, zone, local) => expect(formatLocal(at(instant), zone)).toBe(local));
});
