import { ConfigError, loadConfig } from './config';

const KEY = 'k'.repeat(40);

describe('loadConfig', () => {
  it('gives embedded defaults with no environment', () => {
    const c = loadConfig({}, { embeddedAuditKey: () => KEY });
    expect(c.database.url).toBeNull();
    expect(c.redis).toEqual({ url: 'redis://127.0.0.1:6379', prefix: 'rcflow', requireNoeviction: true, requireAof: false });
    expect(c.workerHttp).toEqual({ host: '127.0.0.1', port: 9465 });
    expect(c.audit.hmacKey).toBe(KEY);
    expect(c.jobs.attempts).toBe(5);
    expect(c.agent.loopback.default).toEqual({ settings: 'ack', consent: 'grant', latencyMs: 0 });
  });

  it('requires the append-only file of Redis in production unless REDIS_ALLOW_NO_AOF allows running without it', () => {
    const prod = { NODE_ENV: 'production', AUDIT_HMAC_KEY: KEY };
    expect(loadConfig(prod).redis.requireAof).toBe(true);
    expect(loadConfig({ ...prod, REDIS_ALLOW_NO_AOF: 'true' }).redis.requireAof).toBe(false);
    expect(loadConfig({ ...prod, NODE_ENV: 'development' }).redis.requireAof).toBe(false);
    expect(() => loadConfig({ ...prod, REDIS_ALLOW_NO_AOF: 'maybe' })).toThrow(/REDIS_ALLOW_NO_AOF/);
  });

  it('validates the worker ops listener, 0 turning it off', () => {
    expect(loadConfig({ WORKER_HTTP_PORT: '0', WORKER_HTTP_HOST: '0.0.0.0' }, { embeddedAuditKey: () => KEY }).workerHttp).toEqual({
      host: '0.0.0.0',
      port: 0,
    });
    expect(() => loadConfig({ WORKER_HTTP_PORT: '70000' }, { embeddedAuditKey: () => KEY })).toThrow(/WORKER_HTTP_PORT/);
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

  it('takes audit checkpoints every 5 minutes into .rcflow/checkpoints unless told otherwise, 0 turning them off', () => {
    expect(loadConfig({ AUDIT_HMAC_KEY: KEY, QUEUE_PREFIX: '{rc}' }).audit.checkpoint).toEqual({
      intervalMs: 300_000,
      dir: '.rcflow/checkpoints',
      keep: 24,
      redisKey: '{rc}:audit:checkpoint',
    });
    const set = {
      AUDIT_HMAC_KEY: KEY,
      AUDIT_CHECKPOINT_INTERVAL_MS: '0',
      AUDIT_CHECKPOINT_DIR: '/var/lib/rcflow/cp',
      AUDIT_CHECKPOINT_KEEP: '3',
    };
    expect(loadConfig(set).audit.checkpoint).toMatchObject({ intervalMs: 0, dir: '/var/lib/rcflow/cp', keep: 3 });
    for (const bad of ['500', '-1', 'often', '86400001'])
      expect(() => loadConfig({ AUDIT_HMAC_KEY: KEY, AUDIT_CHECKPOINT_INTERVAL_MS: bad })).toThrow(
        /AUDIT_CHECKPOINT_INTERVAL_MS: (must be 0 \(off\) or from 1000 to 86400000 milliseconds|Invalid input)/,
      );
    expect(() => loadConfig({ AUDIT_HMAC_KEY: KEY, AUDIT_CHECKPOINT_KEEP: '0' })).toThrow(/AUDIT_CHECKPOINT_KEEP/);
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

  it('trusts no proxy and allows no CORS origin unless told, and refuses what Express or a browser would not mean', () => {
    const plain = loadConfig({ AUDIT_HMAC_KEY: KEY });
    expect(plain.http.trustProxy).toEqual([]);
    expect(plain.http.corsOrigins).toEqual([]);
    expect(plain.http.rateLimits).toEqual({
      principal: 6000,
      address: 600,
      health: 600,
      enrol: 120,
      webhook: 1200,
      upgrade: 600,
      signin: 30,
    });
    const set = loadConfig({
      AUDIT_HMAC_KEY: KEY,
      TRUST_PROXY: '10.0.0.0/8, 192.168.1.7,loopback,fd00::/8',
      CORS_ORIGINS: 'https://console.example.com,http://localhost:5173',
    });
    expect(set.http.trustProxy).toEqual(['10.0.0.0/8', '192.168.1.7', 'loopback', 'fd00::/8']);
    expect(set.http.corsOrigins).toEqual(['https://console.example.com', 'http://localhost:5173']);
    expect(loadConfig({ AUDIT_HMAC_KEY: KEY, TRUST_PROXY: 'off' }).http.trustProxy).toEqual([]);
    for (const bad of ['true', '*', '10.0.0.0/33', 'proxy.example.com', '1', '::1/129'])
      expect(() => loadConfig({ AUDIT_HMAC_KEY: KEY, TRUST_PROXY: bad })).toThrow(/TRUST_PROXY/);
    for (const bad of ['*', 'https://console.example.com/', 'console.example.com', 'ftp://x.example'])
      expect(() => loadConfig({ AUDIT_HMAC_KEY: KEY, CORS_ORIGINS: bad })).toThrow(/CORS_ORIGINS/);
  });
});
