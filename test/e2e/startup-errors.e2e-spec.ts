import { PG_ADMIN_URL, TEST_AUDIT_KEY, freshDatabase, queuePrefix } from '../support/env';
import { RcflowProcess } from '../support/processes';
import { freePort } from '../support/redis-server';
import { tearDown } from '../support/teardown';

jest.setTimeout(60_000);

/**
 * An operator who mistypes DATABASE_URL or REDIS_URL (or starts rcflow before them) reads one line
 * naming the variable, its host and port and no password, and the program exits; no stack trace.
 */
describe('start-up with an unreachable database or Redis', () => {
  const started: RcflowProcess[] = [];
  afterAll(() => tearDown({ processes: () => Promise.all(started.map((p) => p.stop('SIGKILL'))) }));

  const start = (script: 'api' | 'worker' | 'cli', env: Record<string, string>, args: string[] = []) => {
    const p = RcflowProcess.start(script, { AUDIT_HMAC_KEY: TEST_AUDIT_KEY, QUEUE_PREFIX: queuePrefix('startup'), ...env }, args);
    started.push(p);
    return p;
  };
  const noStackTrace = (output: string) => expect(output.split('\n').filter((l) => /^\s+at /.test(l))).toEqual([]);

  it.each(['api', 'worker'] as const)('the %s names DATABASE_URL (host:port, no password) and exits 1', async (script) => {
    const closed = await freePort();
    const p = start(script, {
      DATABASE_URL: `postgres://rcflow:hunter2secret@127.0.0.1:${closed}/rcflow`,
      REDIS_URL: 'redis://127.0.0.1:6379',
      PORT: String(await freePort()),
    });
    expect(await p.exited).toBe(1);
    expect(p.output).toContain(`rcflow ${script} cannot start: DATABASE_URL (127.0.0.1:${closed}/rcflow) is unreachable`);
    expect(p.output).not.toContain('hunter2secret');
    expect(p.output.trim().split('\n')).toHaveLength(1);
    noStackTrace(p.output);
  });

  it('the worker names REDIS_URL (password redacted) and exits 1', async () => {
    const closed = await freePort();
    const p = start('worker', { DATABASE_URL: PG_ADMIN_URL, REDIS_URL: `redis://:hunter2secret@127.0.0.1:${closed}/0` });
    expect(await p.exited).toBe(1);
    expect(p.output).toContain(`rcflow worker cannot start: REDIS_URL (redis://:***@127.0.0.1:${closed}/0) is unreachable`);
    expect(p.output).not.toContain('hunter2secret');
    expect(p.output.trim().split('\n')).toHaveLength(1);
    noStackTrace(p.output);
  });

  // The API starts without Redis on purpose (session requests wait in the outbox: test/faults 4b),
  // so it says so once and its queues' reconnects are warnings, not a stack trace each.
  it('the api names REDIS_URL (password redacted) in one warning, starts, and prints no stack trace', async () => {
    const closed = await freePort();
    const db = await freshDatabase('startup_redis');
    const p = start('api', { DATABASE_URL: db, REDIS_URL: `redis://:hunter2secret@127.0.0.1:${closed}/0`, PORT: String(await freePort()) });
    await p.waitFor('api listening', 90_000);
    const [first] = p.output.split('\n');
    expect(first).toBe(
      `rcflow api warning: REDIS_URL (redis://:***@127.0.0.1:${closed}/0) is unreachable: connect ECONNREFUSED 127.0.0.1:${closed}; ` +
        'starting anyway: session requests wait in the outbox until Redis answers',
    );
    expect(p.output).not.toContain('hunter2secret');
    noStackTrace(p.output);
    await p.stop();
  });

  it('the CLI names DATABASE_URL too', async () => {
    const closed = await freePort();
    const p = start('cli', { DATABASE_URL: `postgres://rcflow:hunter2secret@127.0.0.1:${closed}/rcflow` }, ['migrate']);
    expect(await p.exited).toBe(1);
    expect(p.output).toContain(`DATABASE_URL (127.0.0.1:${closed}/rcflow) is unreachable`);
    expect(p.output).not.toContain('hunter2secret');
    noStackTrace(p.output);
  });
});
