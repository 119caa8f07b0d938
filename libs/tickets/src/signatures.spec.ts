import { createHmac } from 'node:crypto';
import { fixture, fixtureBytes } from './testing/fixtures';
import { rcflowSignature, verifyDelivery, zendeskSignature, type DeliveryHeaders } from './signatures';

const lower = (h: Record<string, string>): DeliveryHeaders => Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
const flipLastByte = (b: Buffer) => Buffer.concat([b.subarray(0, -1), Buffer.from([(b.at(-1) ?? 0) ^ 1])]);
const NOW = Date.parse('2026-11-29T12:00:00Z');

describe('GitHub X-Hub-Signature-256 (the documented test vector)', () => {
  const v = fixture<{ secret: string; payload: string; 'X-Hub-Signature-256': string }>('github_signature_test_vector.json');
  const headers = { 'x-hub-signature-256': v['X-Hub-Signature-256'] };

  it('accepts the vector', () => {
    expect(verifyDelivery('github', 'hmac', Buffer.from(v.payload), headers, [v.secret], NOW)).toEqual({ ok: true, secretIndex: 0 });
  });
  it('refuses it when one byte of the body changes', () => {
    expect(verifyDelivery('github', 'hmac', flipLastByte(Buffer.from(v.payload)), headers, [v.secret], NOW)).toMatchObject({
      ok: false,
      reason: 'mismatch',
    });
  });
  it('accepts the second of two active secrets (rotation) and says which', () => {
    expect(verifyDelivery('github', 'hmac', Buffer.from(v.payload), headers, ['the new one', v.secret], NOW)).toEqual({
      ok: true,
      secretIndex: 1,
    });
  });
  it('names a missing or malformed header', () => {
    expect(verifyDelivery('github', 'hmac', Buffer.from(v.payload), {}, [v.secret], NOW)).toMatchObject({ ok: false, reason: 'missing' });
    expect(verifyDelivery('github', 'hmac', Buffer.from(v.payload), { 'x-hub-signature-256': 'sha1=abc' }, [v.secret], NOW)).toMatchObject({
      ok: false,
      reason: 'malformed',
    });
  });
  it('refuses every delivery of an integration without an active secret', () => {
    expect(verifyDelivery('github', 'hmac', Buffer.from(v.payload), headers, [], NOW)).toMatchObject({ ok: false });
  });
});

describe('Jira X-Hub-Signature', () => {
  const raw = fixtureBytes('jira_issue_updated_assigned.json');
  const secret = 'jira-webhook-secret';
  const sig = `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;

  it('accepts the fixture signed as Jira signs it, and refuses a changed byte or another secret', () => {
    expect(verifyDelivery('jira', 'hmac', raw, { 'x-hub-signature': sig }, [secret], NOW)).toEqual({ ok: true, secretIndex: 0 });
    expect(verifyDelivery('jira', 'hmac', flipLastByte(raw), { 'x-hub-signature': sig }, [secret], NOW)).toMatchObject({
      ok: false,
      reason: 'mismatch',
    });
    expect(verifyDelivery('jira', 'hmac', raw, { 'x-hub-signature': sig }, ['other'], NOW)).toMatchObject({
      ok: false,
      reason: 'mismatch',
    });
  });
  it('does not take GitHub’s header for Jira’s', () => {
    expect(verifyDelivery('jira', 'hmac', raw, { 'x-hub-signature-256': sig }, [secret], NOW)).toMatchObject({
      ok: false,
      reason: 'missing',
    });
  });
});

describe('Zendesk X-Zendesk-Webhook-Signature (the SDK test vector)', () => {
  const v = fixture<{ secret: string; body_file: string; headers: Record<string, string> }>('zendesk_signature_test_vector.json');
  const raw = fixtureBytes(v.body_file);
  const ts = v.headers['X-Zendesk-Webhook-Signature-Timestamp'] ?? '';

  it('computes the published signature over timestamp + body', () => {
    expect(zendeskSignature(v.secret, ts, raw)).toBe(v.headers['X-Zendesk-Webhook-Signature']);
    expect(zendeskSignature(v.secret, ts, flipLastByte(raw))).not.toBe(v.headers['X-Zendesk-Webhook-Signature']);
  });
  it('refuses the vector as stale: its timestamp is not within 5 minutes of now', () => {
    expect(verifyDelivery('zendesk', 'hmac', raw, lower(v.headers), [v.secret], NOW)).toMatchObject({ ok: false, reason: 'stale' });
  });
  it('accepts a fresh delivery signed the same way, and refuses one 6 minutes old', () => {
    const at = new Date(NOW - 60_000).toISOString();
    const headers = { 'x-zendesk-webhook-signature': zendeskSignature(v.secret, at, raw), 'x-zendesk-webhook-signature-timestamp': at };
    expect(verifyDelivery('zendesk', 'hmac', raw, headers, [v.secret], NOW)).toEqual({ ok: true, secretIndex: 0 });
    expect(verifyDelivery('zendesk', 'hmac', flipLastByte(raw), headers, [v.secret], NOW)).toMatchObject({ ok: false, reason: 'mismatch' });
    const old = new Date(NOW - 6 * 60_000).toISOString();
    const stale = { 'x-zendesk-webhook-signature': zendeskSignature(v.secret, old, raw), 'x-zendesk-webhook-signature-timestamp': old };
    expect(verifyDelivery('zendesk', 'hmac', raw, stale, [v.secret], NOW)).toMatchObject({ ok: false, reason: 'stale' });
  });
  it('does not say "stale" to a forger: a wrong signature with an old timestamp is a mismatch', () => {
    const headers = {
      'x-zendesk-webhook-signature': zendeskSignature('guess', '1234', raw),
      'x-zendesk-webhook-signature-timestamp': '1234',
    };
    expect(verifyDelivery('zendesk', 'hmac', raw, headers, [v.secret], NOW)).toMatchObject({ ok: false, reason: 'mismatch' });
  });
});

describe("rcflow's scheme (ServiceNow, Freshworks, generic)", () => {
  const raw = fixtureBytes('servicenow_table_api_incident_list_pdi.json');
  const secret = 'snow-secret';
  const ts = String(Math.floor(NOW / 1000));

  it.each(['servicenow', 'freshservice', 'freshdesk', 'generic'] as const)(
    '%s: accepts hex and base64 digests of "<ts>.<body>" and refuses a changed byte',
    (kind) => {
      const hex = rcflowSignature(secret, ts, raw);
      const base64 = `sha256=${createHmac('sha256', secret).update(`${ts}.`).update(raw).digest('base64')}`;
      for (const signature of [hex, base64])
        expect(verifyDelivery(kind, 'hmac', raw, { 'x-rcflow-signature': signature, 'x-rcflow-timestamp': ts }, [secret], NOW)).toEqual({
          ok: true,
          secretIndex: 0,
        });
      expect(
        verifyDelivery(kind, 'hmac', flipLastByte(raw), { 'x-rcflow-signature': hex, 'x-rcflow-timestamp': ts }, [secret], NOW),
      ).toMatchObject({
        ok: false,
        reason: 'mismatch',
      });
    },
  );
  it('binds the timestamp: the same signature with another timestamp is refused, an old one is stale', () => {
    const signature = rcflowSignature(secret, ts, raw);
    expect(
      verifyDelivery(
        'generic',
        'hmac',
        raw,
        { 'x-rcflow-signature': signature, 'x-rcflow-timestamp': String(Number(ts) + 1) },
        [secret],
        NOW,
      ),
    ).toMatchObject({
      ok: false,
      reason: 'mismatch',
    });
    const old = String(Number(ts) - 301);
    expect(
      verifyDelivery(
        'generic',
        'hmac',
        raw,
        { 'x-rcflow-signature': rcflowSignature(secret, old, raw), 'x-rcflow-timestamp': old },
        [secret],
        NOW,
      ),
    ).toMatchObject({
      ok: false,
      reason: 'stale',
    });
  });
  it('with token auth, takes the shared secret header and nothing else', () => {
    expect(verifyDelivery('freshdesk', 'token', raw, { 'x-rcflow-token': secret }, ['old', secret], NOW)).toEqual({
      ok: true,
      secretIndex: 1,
    });
    expect(verifyDelivery('freshdesk', 'token', raw, { 'x-rcflow-token': `${secret}x` }, [secret], NOW)).toMatchObject({
      ok: false,
      reason: 'mismatch',
    });
    expect(
      verifyDelivery(
        'freshdesk',
        'token',
        raw,
        { 'x-rcflow-signature': rcflowSignature(secret, ts, raw), 'x-rcflow-timestamp': ts },
        [secret],
        NOW,
      ),
    ).toMatchObject({
      ok: false,
      reason: 'missing',
    });
  });
});
