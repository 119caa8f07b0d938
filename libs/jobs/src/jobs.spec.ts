import { JobName, QueueName, defaultJobOptions, jobIdOf } from './jobs';
import { redisOptionsFromUrl } from './redis';

describe('jobs', () => {
  it('names one job per session and step, so re-enqueuing deduplicates', () => {
    const id = 's-1';
    expect(jobIdOf({ queue: QueueName.Sessions, name: JobName.AdvanceSession, data: { sessionId: id } })).toBe('advance.s-1');
    expect(jobIdOf({ queue: QueueName.Sessions, name: JobName.EndSession, data: { sessionId: id, endedBy: 'x' } })).toBe('end.s-1');
  });

  it('sets retries, backoff and retention in one place', () => {
    expect(defaultJobOptions({ attempts: 3, backoffMs: 500, keepCompletedSeconds: 60, keepFailedSeconds: 600 })).toEqual({
      attempts: 3,
      backoff: { type: 'exponential', delay: 500 },
      removeOnComplete: { age: 60 },
      removeOnFail: { age: 600 },
    });
  });

  it('reads connection options from a Redis URL', () => {
    expect(redisOptionsFromUrl('rediss://u:p%40ss@cache.example:6380/2')).toMatchObject({
      host: 'cache.example',
      port: 6380,
      username: 'u',
      password: 'p@ss',
      db: 2,
      tls: {},
    });
    expect(redisOptionsFromUrl('redis://127.0.0.1')).toMatchObject({ host: '127.0.0.1', port: 6379, db: 0, tls: undefined });
  });
});
