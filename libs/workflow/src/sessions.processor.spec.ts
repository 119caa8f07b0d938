import type { Job } from 'bullmq';
import type { RcflowConfig } from '@rcflow/config';
import { JobName, QueueName, jobNamesOf } from '@rcflow/jobs';
import type { AdvanceSessionHandler } from './handlers/advance-session.handler';
import type { EndSessionHandler } from './handlers/end-session.handler';
import { SessionsProcessor, assertJobHandlers, attemptOf } from './sessions.processor';

function processor() {
  const advance = { handle: jest.fn(async (_id: string, _attempt: { final: boolean }) => undefined) };
  const end = { handle: jest.fn(async (_id: string, _by: string) => undefined) };
  const p = new SessionsProcessor(advance as unknown as AdvanceSessionHandler, end as unknown as EndSessionHandler, {} as RcflowConfig);
  return { p, advance, end };
}
const job = (name: string, data: unknown, attemptsMade = 0, attempts = 3) =>
  ({ name, data, attemptsMade, opts: { attempts } }) as unknown as Job;

describe('SessionsProcessor', () => {
  it('routes each job name to its own handler with its payload', async () => {
    const { p, advance, end } = processor();
    await p.process(job(JobName.AdvanceSession, { sessionId: 's1' }) as never);
    await p.process(job(JobName.EndSession, { sessionId: 's2', endedBy: 'alice' }) as never);
    expect(advance.handle.mock.calls).toEqual([['s1', { final: false }]]);
    expect(end.handle.mock.calls).toEqual([['s2', 'alice']]);
  });

  it('tells the handler when this attempt is the last one', async () => {
    const { p, advance } = processor();
    await p.process(job(JobName.AdvanceSession, { sessionId: 's1' }, 1, 3) as never);
    await p.process(job(JobName.AdvanceSession, { sessionId: 's1' }, 2, 3) as never);
    expect(advance.handle.mock.calls.map(([, a]) => a)).toEqual([{ final: false }, { final: true }]);
    expect(attemptOf({ attemptsMade: 0, opts: {} })).toEqual({ final: true });
    expect(attemptOf({ attemptsMade: 0, opts: { attempts: 2 } })).toEqual({ final: false });
  });

  it('fails a job whose name has no handler, so it is retried and seen rather than dropped', async () => {
    const { p, advance, end } = processor();
    await expect(p.process(job('session.unknown', {}) as never)).rejects.toThrow('no handler for job "session.unknown"');
    expect(advance.handle).not.toHaveBeenCalled();
    expect(end.handle).not.toHaveBeenCalled();
  });

  it('holds exactly one handler for every job name at start-up', () => {
    const { p } = processor();
    expect(() => p.onModuleInit()).not.toThrow();
    expect(Object.keys(p.handlers).sort()).toEqual(jobNamesOf(QueueName.Sessions).sort());
  });
});

describe('assertJobHandlers', () => {
  const all = Object.fromEntries(jobNamesOf(QueueName.Sessions).map((n) => [n, async () => undefined]));

  it('accepts one function per job name', () => {
    expect(() => assertJobHandlers(all)).not.toThrow();
  });

  it('refuses a missing handler, a handler that is not a function and a handler for an unknown job', () => {
    const { [JobName.EndSession]: _, ...missing } = all;
    expect(() => assertJobHandlers(missing)).toThrow(`no handler for "${JobName.EndSession}"`);
    expect(() => assertJobHandlers({ ...all, [JobName.AdvanceSession]: 'nope' })).toThrow(`no handler for "${JobName.AdvanceSession}"`);
    expect(() => assertJobHandlers({ ...all, 'session.extra': async () => undefined })).toThrow('handler for unknown job "session.extra"');
  });
});
