import { MAX_FRAME_BYTES, formatCredential, parseAgentMessage, parseCredential, parseServerMessage } from './protocol';

const presence = {
  agentVersion: '1.2.0',
  osFamily: 'linux',
  osBuild: '6.1',
  fqdn: null,
  domainJoined: false,
  domain: null,
  loggedOnUser: 'carol',
  locked: false,
  localAdministrators: [],
  appliedSettingsHash: null,
};

describe('agent protocol', () => {
  it('accepts a well-formed hello and heartbeat', () => {
    expect(parseAgentMessage(JSON.stringify({ v: 1, type: 'hello', presence }))).toMatchObject({ ok: true });
    expect(parseAgentMessage(Buffer.from(JSON.stringify({ v: 1, type: 'heartbeat', presence })))).toMatchObject({ ok: true });
  });

  it.each([
    ['bad JSON', '{', 'bad_frame', /not valid JSON/],
    ['another version', JSON.stringify({ v: 2, type: 'hello', presence }), 'bad_version', /version 2/],
    ['no version', JSON.stringify({ type: 'hello', presence }), 'bad_version', /version undefined/],
    ['unknown type', JSON.stringify({ v: 1, type: 'teleport' }), 'bad_frame', /type/],
    ['extra field', JSON.stringify({ v: 1, type: 'hello', presence, admin: true }), 'bad_frame', /admin|Unrecognized/],
    ['wrong field type', JSON.stringify({ v: 1, type: 'hello', presence: { ...presence, locked: 'no' } }), 'bad_frame', /presence.locked/],
    [
      'bad version string',
      JSON.stringify({ v: 1, type: 'hello', presence: { ...presence, agentVersion: 'latest' } }),
      'bad_frame',
      /agentVersion/,
    ],
    ['oversized', JSON.stringify({ v: 1, type: 'hello', presence, pad: 'x'.repeat(MAX_FRAME_BYTES) }), 'bad_frame', /exceeds/],
    ['bad hash', JSON.stringify({ v: 1, type: 'settings_applied', commandId: 'c1', versionHash: 'abc' }), 'bad_frame', /SHA-256/],
  ])('refuses %s', (_, raw, code, message) => {
    const r = parseAgentMessage(raw);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.code).toBe(code);
      expect(r.error).toMatch(message);
    }
  });

  it('validates what the server sends too', () => {
    expect(
      parseServerMessage(JSON.stringify({ v: 1, type: 'welcome', deviceId: '00000000-0000-4000-8000-000000000000', heartbeatSeconds: 30 }))
        .ok,
    ).toBe(true);
    expect(parseServerMessage(JSON.stringify({ v: 1, type: 'welcome', deviceId: 'x', heartbeatSeconds: 30 })).ok).toBe(false);
  });

  it('parses credentials of the expected kind only', () => {
    const id = '00000000-0000-4000-8000-000000000000';
    const secret = 'A'.repeat(43);
    expect(parseCredential(formatCredential('rcd', id, secret), 'rcd')).toEqual({ id, secret });
    expect(parseCredential(formatCredential('rce', id, secret), 'rcd')).toBeNull();
    expect(parseCredential(`rcd_${id}.short`, 'rcd')).toBeNull();
  });
});
