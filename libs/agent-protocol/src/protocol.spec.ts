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

  describe('notices and pre-approval', () => {
    const noticeId = '00000000-0000-4000-8000-000000000001';
    const sessionId = '00000000-0000-4000-8000-000000000002';
    const notice = {
      v: 1,
      type: 'session_notice',
      commandId: `notice:${noticeId}`,
      noticeId,
      sessionId,
      scheduleId: null,
      windowStart: '2026-12-01T02:00:00.000Z',
      windowEnd: '2026-12-01T02:30:00.000Z',
      viewer: 'alice',
      sessionType: 'remote-control',
      access: 'full',
      reason: 'maintenance',
      askApproval: true,
    };
    const start = {
      v: 1,
      type: 'start_session',
      commandId: 'c1',
      sessionId,
      viewer: 'alice',
      sessionType: 'remote-control',
      access: 'full',
      consent: { rule: 'pre_approved', noticeId, timeoutMs: 1000, onTimeout: 'deny' },
      notification: { taskbarIcon: true, connectionBar: true, audibleSignal: 'none' },
    };

    it('accepts a notice for a booking or for an occurrence', () => {
      expect(parseServerMessage(JSON.stringify(notice))).toMatchObject({ ok: true, message: { noticeId, askApproval: true } });
      const occurrence = { ...notice, sessionId: null, scheduleId: sessionId };
      expect(parseServerMessage(JSON.stringify(occurrence)).ok).toBe(true);
    });

    it.each([
      ['both origins', { sessionId, scheduleId: sessionId }, /exactly one of sessionId and scheduleId/],
      ['no origin', { sessionId: null, scheduleId: null }, /exactly one of sessionId and scheduleId/],
      ['a window that ends before it starts', { windowEnd: '2026-12-01T01:00:00.000Z' }, /windowEnd: must not be before/],
      ['a window that is not a time', { windowStart: 'Tuesday' }, /windowStart/],
      ['a notice id that is not a uuid', { noticeId: 'n1' }, /noticeId/],
      ['askApproval as text', { askApproval: 'yes' }, /askApproval/],
      ['no viewer', { viewer: '' }, /viewer/],
    ])('refuses a notice with %s', (_, patch, message) => {
      const r = parseServerMessage(JSON.stringify({ ...notice, ...patch }));
      expect(r).toMatchObject({ ok: false, code: 'bad_frame' });
      if (!r.ok) expect(r.error).toMatch(message);
    });

    it('accepts a start on a pre-approval with its notice, and refuses a notice id on any other rule', () => {
      expect(parseServerMessage(JSON.stringify(start)).ok).toBe(true);
      const { noticeId: _, ...withoutNotice } = start.consent;
      const r1 = parseServerMessage(JSON.stringify({ ...start, consent: withoutNotice }));
      expect(r1.ok).toBe(false);
      const r2 = parseServerMessage(JSON.stringify({ ...start, consent: { ...start.consent, rule: 'prompt_user' } }));
      expect(r2.ok).toBe(false);
      if (!r2.ok) expect(r2.error).toMatch(/consent.noticeId: is given with rule pre_approved, and only then/);
    });

    it('accepts the acknowledgement and every answer of the user', () => {
      expect(parseAgentMessage(JSON.stringify({ v: 1, type: 'notice_received', commandId: `notice:${noticeId}`, noticeId })).ok).toBe(true);
      for (const decision of ['granted', 'denied', 'revoked']) {
        expect(parseAgentMessage(JSON.stringify({ v: 1, type: 'preapproval', noticeId, decision, answeredBy: 'carol' })).ok).toBe(true);
      }
      expect(parseAgentMessage(JSON.stringify({ v: 1, type: 'preapproval', noticeId, decision: 'granted', answeredBy: null })).ok).toBe(
        true,
      );
      expect(
        parseAgentMessage(
          JSON.stringify({ v: 1, type: 'consent', commandId: 'c1', sessionId, outcome: 'pre_approved', answeredBy: 'carol' }),
        ).ok,
      ).toBe(true);
    });

    it.each([
      ['an unknown decision', { decision: 'maybe' }, /decision/],
      ['a notice id that is not a uuid', { noticeId: '../x' }, /noticeId/],
      ['an empty name', { answeredBy: '' }, /answeredBy/],
      ['a field it does not have', { sessionId }, /Unrecognized|sessionId/],
    ])('refuses a preapproval with %s', (_, patch, message) => {
      const r = parseAgentMessage(
        JSON.stringify({ v: 1, type: 'preapproval', noticeId, decision: 'granted', answeredBy: 'carol', ...patch }),
      );
      expect(r).toMatchObject({ ok: false, code: 'bad_frame' });
      if (!r.ok) expect(r.error).toMatch(message);
    });
  });
});
