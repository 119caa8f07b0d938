import { newWebhookSecret, secretKey, signWebhook, signedWebhookHeaders, verifyWebhook } from './signature';

// The published vector of the Standard Webhooks reference libraries (libraries/javascript/src/webhook.test.ts, "sign function works").
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

describe('Standard Webhooks signature', () => {
  it('signs the published test vector exactly', () => {
    expect(signWebhook(VECTOR.secret, VECTOR.id, VECTOR.timestamp, VECTOR.body)).toBe(VECTOR.signature);
    // The prefix is optional when keying.
    expect(signWebhook(VECTOR.secret.slice('whsec_'.length), VECTOR.id, VECTOR.timestamp, VECTOR.body)).toBe(VECTOR.signature);
  });

  it('verifies the vector, and refuses a changed body, id, timestamp or secret', () => {
    const now = VECTOR.timestamp * 1000;
    const headers = { 'webhook-id': VECTOR.id, 'webhook-timestamp': String(VECTOR.timestamp), 'webhook-signature': VECTOR.signature };
    expect(verifyWebhook(VECTOR.secret, headers, VECTOR.body, now)).toEqual({ ok: true });
    expect(verifyWebhook(VECTOR.secret, headers, '{"test": 2432232315}', now)).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyWebhook(VECTOR.secret, { ...headers, 'webhook-id': 'msg_other' }, VECTOR.body, now)).toEqual({
      ok: false,
      reason: 'mismatch',
    });
    expect(verifyWebhook(newWebhookSecret(), headers, VECTOR.body, now)).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyWebhook(VECTOR.secret, headers, VECTOR.body, now + 301_000)).toEqual({ ok: false, reason: 'stale' });
    expect(verifyWebhook(VECTOR.secret, { ...headers, 'webhook-signature': undefined }, VECTOR.body, now)).toEqual({
      ok: false,
      reason: 'missing',
    });
    // Several signatures (a rotation): one valid one is enough.
    const several = { ...headers, 'webhook-signature': `v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= ${VECTOR.signature}` };
    expect(verifyWebhook(VECTOR.secret, several, VECTOR.body, now)).toEqual({ ok: true });
  });

  it('makes secrets of whsec_ and 32 random bytes, each different', () => {
    const a = newWebhookSecret();
    const b = newWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(secretKey(a)).toHaveLength(32);
    expect(a).not.toBe(b);
  });

  it('signs with every secret of a rotation, each verifying alone', () => {
    const next = newWebhookSecret();
    const headers = signedWebhookHeaders([next, VECTOR.secret], VECTOR.id, VECTOR.timestamp, VECTOR.body);
    expect(headers['webhook-signature']).toBe(`${signWebhook(next, VECTOR.id, VECTOR.timestamp, VECTOR.body)} ${VECTOR.signature}`);
    for (const secret of [next, VECTOR.secret])
      expect(verifyWebhook(secret, headers, VECTOR.body, VECTOR.timestamp * 1000)).toEqual({ ok: true });
    expect(() => signedWebhookHeaders([], VECTOR.id, VECTOR.timestamp, VECTOR.body)).toThrow();
  });

  it('puts the three headers together', () => {
    expect(signedWebhookHeaders(VECTOR.secret, VECTOR.id, VECTOR.timestamp, VECTOR.body)).toEqual({
      'webhook-id': VECTOR.id,
      'webhook-timestamp': '1614265330',
      'webhook-signature': VECTOR.signature,
    });
  });
});
