import { REDACTED, isSecretKey, redactSecrets } from './redact';

describe('isSecretKey', () => {
  it.each([
    'authorization',
    'Authorization',
    'cookie',
    'set-cookie',
    'x-hub-signature-256',
    'webhook-signature',
    'x-viewer-token',
    'token',
    'enrolmentToken',
    'secret',
    'webhookSecret',
    'password',
    'passwd',
    'apiKey',
    'api_key',
    'x-api-key',
    'key',
    'hmacKey',
    'credentials',
  ])('%s is a secret', (name) => expect(isSecretKey(name)).toBe(true));

  it.each(['keyId', 'monkey', 'keys', 'sessionId', 'reqId', 'principalId', 'reason', 'path', 'method', 'status', 'from', 'to'])(
    '%s is not',
    (name) => expect(isSecretKey(name)).toBe(false),
  );
});

describe('redactSecrets', () => {
  it('replaces secret-named values at any depth, in arrays and errors, and copies only what it changes', () => {
    const clean = { sessionId: 's1', nested: { list: [{ name: 'a' }] } };
    expect(redactSecrets(clean)).toBe(clean);
    const err = Object.assign(new Error('boom'), { config: { headers: { Authorization: 'Bearer rcf_x.y' } } });
    const input = {
      headers: { authorization: 'Bearer rcf_abc.def', 'x-api-key': 'rcf_k.s', accept: 'json' },
      body: { name: 'n', secret: 'hunter2', deep: { deeper: [{ password: 'p', ok: 1 }] } },
      err,
      empty: { token: null },
    };
    const out = redactSecrets(input);
    expect(out).toEqual({
      headers: { authorization: REDACTED, 'x-api-key': REDACTED, accept: 'json' },
      body: { name: 'n', secret: REDACTED, deep: { deeper: [{ password: REDACTED, ok: 1 }] } },
      err: expect.any(Error),
      empty: { token: null },
    });
    expect((out.err as unknown as { config: unknown }).config).toEqual({ headers: { Authorization: REDACTED } });
    expect(out.err.message).toBe('boom');
    // The input is left as it was.
    expect(input.headers.authorization).toBe('Bearer rcf_abc.def');
    expect((err as unknown as { config: { headers: { Authorization: string } } }).config.headers.Authorization).toBe('Bearer rcf_x.y');
  });
});
