import fc from 'fast-check';
import { findUnstorableText, textProblem } from './text';

/** What the pg driver does with a string: UTF-8 out, UTF-8 back (a lone surrogate becomes U+FFFD). */
const throughUtf8 = (s: string) => Buffer.from(s, 'utf8').toString('utf8');

describe('textProblem (what PostgreSQL cannot store exactly)', () => {
  it.each([
    ['NUL', 'a\u0000b', /NUL.*character 1/],
    ['a lone high surrogate', 'x\ud800y', /lone UTF-16 surrogate.*character 1/],
    ['a lone high surrogate at the end', 'xy\udbff', /lone.*character 2/],
    ['a lone low surrogate', '\udc00', /lone.*character 0/],
    ['surrogates in the wrong order', '\udc00\ud800', /lone.*character 0/],
  ])('refuses %s', (_what, s, message) => {
    expect(textProblem(s)).toMatch(message);
  });

  it.each([
    ['emoji (a surrogate pair)', 'ok 👍🏽 done'],
    ['combining marks', 'e\u0301\u0308'],
    ['right-to-left text', 'שלום عليكم'],
    ['line and paragraph separators', 'a\u2028b\u2029c'],
    ['other control characters', '\u0001\t\n\u001f\u007f'],
    ['the empty string', ''],
    ['U+FFFD and U+FFFF', '\ufffd\uffff'],
  ])('accepts %s', (_what, s) => {
    expect(textProblem(s)).toBeNull();
  });

  it('accepts exactly the strings that survive UTF-8 unchanged and hold no NUL', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const storable = throughUtf8(s) === s && !s.includes('\u0000');
        expect(textProblem(s) === null).toBe(storable);
      }),
      { numRuns: 2000 },
    );
    // Code-unit strings hit lone surrogates far more often than the binary (code point) ones.
    fc.assert(
      fc.property(fc.string({ unit: fc.integer({ min: 0xd7f0, max: 0xe010 }).map((c) => String.fromCharCode(c)) }), (s) => {
        expect(textProblem(s) === null).toBe(throughUtf8(s) === s);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('findUnstorableText', () => {
  it('names the field, in arrays and nested objects', () => {
    expect(findUnstorableText({ presence: { osBuild: 'a\u0000b' } }, 'body')).toEqual({
      path: 'body.presence.osBuild',
      problem: expect.stringMatching(/NUL/),
    });
    expect(findUnstorableText({ a: [1, 'ok', { b: '\ud800' }] })).toEqual({ path: 'a.2.b', problem: expect.stringMatching(/surrogate/) });
    expect(findUnstorableText('\udfff')).toEqual({ path: 'value', problem: expect.any(String) });
  });

  it('checks object keys, which end up in jsonb', () => {
    expect(findUnstorableText({ data: { 'k\u0000': 1 } }, 'body')?.path).toBe('body.data."k\\u0000"');
  });

  it('walks input nested deeper than the call stack allows', () => {
    let deep: unknown = 'x\ud800';
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(findUnstorableText(deep)?.problem).toMatch(/surrogate/);
  });

  it('finds a bad string wherever it is put in any JSON value, and nothing in a clean one', () => {
    const clean = fc.jsonValue().filter((v) => textProblem(JSON.stringify(v)) === null && !JSON.stringify(v).includes('\\u0000'));
    fc.assert(
      fc.property(clean, fc.constantFrom('\u0000', '\ud800', '\udc00x'), fc.nat(), (value, bad, where) => {
        expect(findUnstorableText(value)).toBeNull();
        // Put the bad text at some string position inside the value (or wrap it).
        const containers: unknown[] = [];
        const collect = (v: unknown) => {
          if (v !== null && typeof v === 'object') {
            containers.push(v);
            for (const c of Object.values(v)) collect(c);
          }
        };
        collect(value);
        const target = containers[where % Math.max(1, containers.length)];
        const poisoned: unknown = target === undefined ? [value, bad] : value;
        if (Array.isArray(target)) target.push(bad);
        else if (target) (target as Record<string, unknown>).poisoned = `a${bad}`;
        expect(findUnstorableText(poisoned)).not.toBeNull();
      }),
      { numRuns: 500 },
    );
  });
});
