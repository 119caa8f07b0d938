import fc from 'fast-check';
import { ValidationFailed } from '@rcflow/domain';
import { EARLIEST_INSTANT, LATEST_INSTANT, adminCursor, auditCursor, cursor, dateTime, sessionCursor } from './validation';

/** Property-based checks of the cursor codecs and the shared date schema. */

const MAX_BIGINT = 2n ** 63n - 1n;
const instant = fc.integer({ min: EARLIEST_INSTANT, max: LATEST_INSTANT }).map((t) => new Date(t).toISOString());
const bigintText = fc.bigInt({ min: 0n, max: MAX_BIGINT }).map(String);
const micros = fc.bigInt({ min: 0n, max: 10n ** 18n - 1n }).map(String);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const pair = (v: unknown): v is [unknown, unknown] => Array.isArray(v) && v.length === 2;
const SHAPE = new Map<unknown, (v: unknown) => boolean>([
  [
    auditCursor,
    (v) => Array.isArray(v) && v.length === 1 && typeof v[0] === 'string' && /^(0|[1-9]\d*)$/.test(v[0]) && BigInt(v[0]) <= MAX_BIGINT,
  ],
  [sessionCursor, (v) => pair(v) && dateTime.safeParse(v[0]).success && typeof v[1] === 'string' && UUID.test(v[1])],
  [adminCursor, (v) => pair(v) && typeof v[0] === 'string' && /^\d{1,18}$/.test(v[0]) && typeof v[1] === 'string' && UUID.test(v[1])],
]);

const refused = (decode: () => unknown) => {
  expect(decode).toThrow(ValidationFailed);
  expect(decode).toThrow(/invalid cursor/);
};

describe('cursor codecs (properties)', () => {
  it('decode what they encode, in the transport alphabet', () => {
    fc.assert(
      fc.property(bigintText, instant, fc.uuid(), micros, (id, at, uuid, us) => {
        for (const [codec, value] of [
          [auditCursor, [id]],
          [sessionCursor, [at, uuid]],
          [adminCursor, [us, uuid]],
        ] as const) {
          const c = (codec.encode as (v: unknown) => string)(value);
          expect(cursor.safeParse(c).success).toBe(true);
          expect((codec.decode as (c: string) => unknown)(c)).toEqual(value);
        }
      }),
    );
  });

  it('answer anything else with a 400, never a value of the wrong type or range', () => {
    const anyJson = fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v)).toString('base64url'));
    const anyText = fc.string({ unit: 'binary', maxLength: 300 });
    fc.assert(
      fc.property(fc.oneof(anyJson, anyText), (c) => {
        for (const codec of [auditCursor, sessionCursor, adminCursor]) {
          let value: unknown;
          try {
            value = codec.decode(c);
          } catch (err) {
            expect(err).toBeInstanceOf(ValidationFailed);
            continue;
          }
          // Whatever decodes is of the codec's shape and range (random JSON rarely is).
          expect(SHAPE.get(codec)!(value)).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it.each([
    ['["x","y"]', sessionCursor],
    ['["1.5"]', auditCursor],
    ['[1.5]', auditCursor],
    ['["-1"]', auditCursor],
    ['["9223372036854775808"]', auditCursor],
    ['["0001"]', auditCursor],
    ['["0000-01-01T00:00:00Z","00000000-0000-4000-8000-000000000000"]', sessionCursor],
    ['["9999-12-31T23:59:59-14:00","00000000-0000-4000-8000-000000000000"]', sessionCursor],
    ['["2024-01-01T00:00:00Z","not-a-uuid"]', sessionCursor],
    ['["2024-01-01T00:00:00Z","00000000-0000-4000-8000-000000000000",1]', sessionCursor],
    ['["1e3","00000000-0000-4000-8000-000000000000"]', adminCursor],
    ['{"0":"1"}', auditCursor],
    ['null', auditCursor],
  ])('refuses %s', (json, codec) => {
    refused(() => codec.decode(Buffer.from(json).toString('base64url')));
  });
});

describe('dateTime (the one date schema of lists, exports and reports)', () => {
  it('accepts every instant from 1970 to the end of 9999 UTC, in any offset', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: EARLIEST_INSTANT + 14 * 3600_000, max: LATEST_INSTANT - 14 * 3600_000 }),
        fc.integer({ min: -14 * 60, max: 14 * 60 }),
        (t, offsetMin) => {
          const local = new Date(t + offsetMin * 60_000).toISOString().slice(0, -1);
          const sign = offsetMin < 0 ? '-' : '+';
          const abs = Math.abs(offsetMin);
          const text = `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
          expect(dateTime.safeParse(text).success).toBe(true);
          expect(Date.parse(text)).toBe(t);
        },
      ),
    );
  });

  it.each([
    '0000-01-01T00:00:00Z',
    '9999-12-31T23:59:59-14:00',
    '1969-12-31T23:59:59Z',
    '1970-01-01T00:00:00+00:01',
    '2023-02-29T00:00:00Z',
    '2023-12-31T23:59:60Z',
    '+010000-01-01T00:00:00Z',
    'now',
  ])('refuses %s', (s) => {
    expect(dateTime.safeParse(s).success).toBe(false);
  });
});
