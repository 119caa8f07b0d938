import { compareVersions, parseVersion } from './version';

describe('parseVersion', () => {
  it('splits dotted numbers and drops leading zeros', () => {
    expect(parseVersion('1.02.0003')).toEqual(['1', '2', '3']);
    expect(parseVersion('0.0')).toEqual(['0', '0']);
    expect(parseVersion(' 10.0.19045 ')).toEqual(['10', '0', '19045']);
  });

  it('ignores pre-release and build metadata', () => {
    expect(parseVersion('1.2.3-beta.4')).toEqual(['1', '2', '3']);
    expect(parseVersion('1.2.3+build.7')).toEqual(['1', '2', '3']);
    expect(parseVersion('1.2+sha-abc')).toEqual(['1', '2']);
  });

  it.each(['', 'abc', '1..2', '.1', '1.', 'v1.2', '1.x', '-1', '1 .2'])('refuses %j', (text) => {
    expect(parseVersion(text)).toBeNull();
  });
});

describe('compareVersions', () => {
  it.each([
    ['1.0.0', '1.0.0', 0],
    ['1.0', '1.0.0', 0],
    ['1', '1.0.0.0', 0],
    ['1.0.1', '1.0.0', 1],
    ['1.0.0', '1.0.1', -1],
    ['1.10.0', '1.9.0', 1],
    ['2', '1.99.99', 1],
    ['1.2', '1.2.1', -1],
    ['01.2', '1.2', 0],
    ['1.2.3-rc.1', '1.2.3', 0],
    ['1.2.3+build', '1.2.3-alpha', 0],
    ['1.2.4-rc.1', '1.2.3', 1],
    ['10.0.19045', '10.0.17763', 1],
    ['10.0.17763.1', '10.0.17763', 1],
    ['99999999999999999999.1', '99999999999999999999.0', 1],
    ['100000000000000000000', '99999999999999999999', 1],
  ])('compareVersions(%j, %j) has sign %d', (a, b, sign) => {
    expect(Math.sign(compareVersions(a, b))).toBe(sign);
    expect(Math.sign(compareVersions(b, a))).toBe(-sign || 0);
  });

  it('throws a TypeError naming a non-numeric version', () => {
    expect(() => compareVersions('abc', '1.0')).toThrow(TypeError);
    expect(() => compareVersions('1.0', 'x.y')).toThrow(/x\.y/);
  });

  it('names whichever argument is not a version, in the same words', () => {
    expect(() => compareVersions('abc', '1.0')).toThrow(new TypeError('not a dotted numeric version: "abc"'));
    expect(() => compareVersions('1.0', 'x.y')).toThrow(new TypeError('not a dotted numeric version: "x.y"'));
  });
});
