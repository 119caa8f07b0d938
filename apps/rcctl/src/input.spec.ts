import { InvalidArgumentError } from 'commander';
import {
  parseDeviceRef,
  parseDuration,
  parseLimit,
  parsePrincipalRef,
  parseSessionType,
  parseSince,
  parseTypes,
  parseUrl,
  parseUuid,
} from './input';

const bad = (fn: () => unknown) => expect(fn).toThrow(InvalidArgumentError);

describe('command-line values', () => {
  it('durations: bare seconds, units, combinations; nothing zero, negative or over a day', () => {
    expect(parseDuration('120s')).toBe(120_000);
    expect(parseDuration('90')).toBe(90_000);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('24h')).toBe(86_400_000);
    for (const v of ['', '0', '0s', '-5s', '5 s', '2w', 's', '25h', '1e3', 'soon']) bad(() => parseDuration(v));
  });

  it('session types in the forms people type them', () => {
    expect(parseSessionType('remote_control')).toBe('remote-control');
    expect(parseSessionType('remote-assistance')).toBe('remote-assistance');
    expect(parseSessionType('Remote_Desktop')).toBe('remote-desktop');
    bad(() => parseSessionType('telnet'));
  });

  it('a device is a UUID or a host name; a principal a UUID or a name', () => {
    expect(parseDeviceRef('D4228F36-0000-4000-8000-000000000001')).toEqual({ id: 'd4228f36-0000-4000-8000-000000000001' });
    expect(parseDeviceRef('WS-1')).toEqual({ hostname: 'WS-1' });
    for (const v of ['', 'a b', 'ws.contoso.com', '-x', 'x'.repeat(64)]) bad(() => parseDeviceRef(v));
    expect(parsePrincipalRef('alice')).toEqual({ name: 'alice' });
    expect(parsePrincipalRef('00000000-0000-4000-8000-000000000000')).toEqual({ id: '00000000-0000-4000-8000-000000000000' });
    bad(() => parsePrincipalRef('   '));
    bad(() => parsePrincipalRef('a\nb'));
    bad(() => parseUuid('not-a-uuid'));
  });

  it('limits, types, URLs, instants', () => {
    expect(parseLimit('500')).toBe(500);
    for (const v of ['0', '501', '1.5', 'x', '-1']) bad(() => parseLimit(v));
    expect(parseTypes('session.active, session.')).toBe('session.active,session.');
    for (const v of [',', 'Session', 'a;b']) bad(() => parseTypes(v));
    expect(parseUrl('http://localhost:3000/')).toBe('http://localhost:3000');
    expect(parseUrl('https://rc.example/base/')).toBe('https://rc.example/base');
    for (const v of ['localhost:3000', 'ftp://x', 'http://x/?a=1', '']) bad(() => parseUrl(v));
    const since = parseSince(() => Date.UTC(2026, 10, 29, 12, 0, 0));
    expect(since('15m')).toBe('2026-11-29T11:45:00.000Z');
    expect(since('2026-11-29T10:00:00+01:00')).toBe('2026-11-29T09:00:00.000Z');
    for (const v of ['yesterday', '2026-11-29', '2026-13-45T00:00:00Z']) bad(() => since(v));
  });
});
