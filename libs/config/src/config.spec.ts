import { ConfigError, loadConfig } from './config';

const KEY = 'k'.repeat(40);

describe('loadConfig', () => {
  it('gives embedded defaults with no environment', () => {
    const c = loadConfig({}, { embeddedAuditKey: () => KEY });
    expect(c.database.url).toBeNull();
    expect(c.redis).toEqual({ url: 'redis://127.0.0.1:6379', prefix: 'rcflow', requireNoeviction: true });
    expect(c.audit.hmacKey).toBe(KEY);
    expect(c.jobs.attempts).toBe(5);
    expect(c.agent.loopback.default).toEqual({ settings: 'ack', consent: 'grant', latencyMs: 0 });
  });

  it('requires an audit key with a real PostgreSQL', () => {
    expect(() => loadConfig({ DATABASE_URL: 'postgres://x@h/db' }, { embeddedAuditKey: () => KEY })).toThrow(
      /AUDIT_HMAC_KEY: required with DATABASE_URL/,
    );
  });

  it('lists every invalid variable with what to fix', () => {
    let err: ConfigError | undefined;
    try {
      loadConfig({ PORT: 'eighty', REDIS_URL: 'http://x', WORKER_CONCURRENCY: '0', AUDIT_HMAC_KEY: 'short', QUEUE_PREFIX: 'a b' });
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const text = err!.message;
    for (const name of ['PORT', 'REDIS_URL', 'WORKER_CONCURRENCY', 'AUDIT_HMAC_KEY', 'QUEUE_PREFIX']) expect(text).toContain(name);
    expect(text).toMatch(/openssl rand -hex 32/);
  });

  it('batches up to 32 transitions a statement unless told otherwise, 1 turning it off', () => {
    expect(loadConfig({ AUDIT_HMAC_KEY: KEY }).jobs.transitionBatchMax).toBe(32);
    expect(loadConfig({ AUDIT_HMAC_KEY: KEY, TRANSITION_BATCH_MAX: '1' }).jobs.transitionBatchMax).toBe(1);
    expect(() => loadConfig({ AUDIT_HMAC_KEY: KEY, TRANSITION_BATCH_MAX: '0' })).toThrow(/TRANSITION_BATCH_MAX/);
    expect(() => loadConfig({ AUDIT_HMAC_KEY: KEY, TRANSITION_BATCH_MAX: 'many' })).toThrow(/TRANSITION_BATCH_MAX/);
  });

  it('refuses malformed loopback agent JSON and unknown behaviour keys', () => {
    expect(() => loadConfig({ AUDIT_HMAC_KEY: KEY, LOOPBACK_AGENT: '{nope' })).toThrow(/LOOPBACK_AGENT: is not valid JSON/);
    expect(() => loadConfig({ AUDIT_HMAC_KEY: KEY, LOOPBACK_AGENT: '{"default":{"consent":"maybe"}}' })).toThrow(/LOOPBACK_AGENT/);
    const c = loadConfig({ AUDIT_HMAC_KEY: KEY, LOOPBACK_AGENT: '{"byHostname":{"pc1":{"consent":"deny"}}}' });
    expect(c.agent.loopback.byHostname.pc1).toEqual({ settings: 'ack', consent: 'deny', latencyMs: 0 });
  });

  it('ignores variables it does not know and treats empty ones as unset', () => {
    const c = loadConfig({ AUDIT_HMAC_KEY: KEY, PORT: '', SOMETHING_ELSE: 'x' });
    expect(c.http.port).toBe(3000);
  });
});
