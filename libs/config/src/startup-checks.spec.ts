import { describeUrl, firstStartupProblem, reason, redactUrl } from './startup-checks';

describe('start-up checks', () => {
  it('shows host, port and database of a URL, never its user or password', () => {
    expect(describeUrl('postgres://rcflow:s3cret@db.example:6543/rcflow', 5432)).toBe('db.example:6543/rcflow');
    expect(describeUrl('postgres://rcflow:s3cret@db.example/rcflow', 5432)).toBe('db.example:5432/rcflow');
    expect(describeUrl('not a url s3cret', 5432)).toBe('(unparseable URL)');
  });

  it('redacts the password of a Redis URL', () => {
    expect(redactUrl('redis://:s3cret@redis:6380/2')).toBe('redis://:***@redis:6380/2');
    expect(redactUrl('rediss://app:s3cret@redis:6380')).toBe('rediss://app:***@redis:6380');
    expect(redactUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(redactUrl('s3cret')).toBe('(unparseable URL)');
  });

  it('takes the message of an AggregateError from its first error', () => {
    expect(reason(new AggregateError([new Error('connect ECONNREFUSED ::1:1'), new Error('x')], ''))).toBe('connect ECONNREFUSED ::1:1');
    expect(reason(new Error('first line\n    at somewhere'))).toBe('first line');
  });

  it('names the variable of the first check that fails, in one line, and runs no later check', async () => {
    const later = jest.fn(() => Promise.resolve());
    const line = await firstStartupProblem('rcflow api', [
      { variable: 'DATABASE_URL', shown: 'db:5432/rcflow', probe: () => Promise.resolve() },
      { variable: 'REDIS_URL', shown: 'redis://:***@r:6379', probe: () => Promise.reject(new Error('connect ECONNREFUSED 10.0.0.1:6379')) },
      { variable: 'OTHER', shown: '', probe: later },
    ]);
    expect(line).toBe('rcflow api cannot start: REDIS_URL (redis://:***@r:6379) is unreachable: connect ECONNREFUSED 10.0.0.1:6379');
    expect(later).not.toHaveBeenCalled();
    expect(await firstStartupProblem('rcflow api', [{ variable: 'X', shown: '', probe: () => Promise.resolve() }])).toBeNull();
  });
});
