import { JobName, QueueName, defaultJobOptions, jobIdOf, jobNamesOf } from './jobs';
import { redisOptionsFromUrl } from './redis';

describe('jobs', () => {
  it('names one job per session and step, so re-enqueuing deduplicates', () => {
    const id = 's-1';
    expect(jobIdOf({ queue: QueueName.Sessions, name: JobName.AdvanceSession, data: { sessionId: id } })).toBe('advance.s-1');
    expect(jobIdOf({ queue: QueueName.Sessions, name: JobName.EndSession, data: { sessionId: id, endedBy: 'x' } })).toBe('end.s-1');
  });

  it('names one write-back job per session and outcome, and a new one per re-drive', () => {
    const wb = (redrive: number) =>
      jobIdOf({ queue: QueueName.TicketWritebacks, name: JobName.TicketWriteback, data: { sessionId: 's-1', outcome: 'ended', redrive } });
    expect(wb(0)).toBe('writeback.s-1.ended');
    expect(wb(3)).toBe('writeback.s-1.ended.3');
  });

  it('names one timer per schedule and occurrence, and one notice per booked session or occurrence', () => {
    const at = '2026-03-29T00:30:00.000Z';
    expect(jobIdOf({ queue: QueueName.Schedules, name: JobName.ScheduleOccurrence, data: { scheduleId: 'k', at } })).toBe(
      `occurrence.k.${Date.UTC(2026, 2, 29, 0, 30)}`,
    );
    expect(jobIdOf({ queue: QueueName.Schedules, name: JobName.SessionNotice, data: { sessionId: null, scheduleId: 'k', at } })).toBe(
      `notice.k.${Date.UTC(2026, 2, 29, 0, 30)}`,
    );
    expect(
      jobIdOf({ queue: QueueName.Schedules, name: JobName.SessionNotice, data: { sessionId: 's-1', scheduleId: null, at: null } }),
    ).toBe('notice.s-1');
  });

  it('puts every job name in exactly one queue', () => {
    expect(jobNamesOf(QueueName.Sessions).sort()).toEqual([JobName.EndSession, JobName.AdvanceSession].sort());
    expect(jobNamesOf(QueueName.TicketWritebacks)).toEqual([JobName.TicketWriteback]);
    expect(jobNamesOf(QueueName.Schedules).sort()).toEqual([JobName.ScheduleOccurrence, JobName.SessionNotice].sort());
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
