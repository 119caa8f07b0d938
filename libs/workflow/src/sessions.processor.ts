import { Inject, OnApplicationBootstrap, OnModuleInit } from '@nestjs/common';
import { Processor, WorkerHost } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { JobData, JobItem, JobName, JobNameOf, QueueName, jobNamesOf } from '@rcflow/jobs';
import { AdvanceSessionHandler, AttemptInfo, NotYet } from './handlers/advance-session.handler';
import { EndSessionHandler } from './handlers/end-session.handler';
import { delayJob, runWorker } from './run-worker';

type SessionsJob = Job<JobItem['data'], void, JobItem['name']>;

type SessionsJobName = JobNameOf<QueueName.Sessions>;

/** One handler per job name of the sessions queue; the mapped type makes the compiler refuse a missing one. */
export type JobHandlers = { [N in SessionsJobName]: (data: JobData<N>, attempt: AttemptInfo) => Promise<NotYet | undefined> };

/**
 * Refuses a handler map that does not hold exactly one function for every job name (as immich
 * refuses to start with a job that has no handler): a job nobody handles would fail forever.
 */
export function assertJobHandlers(handlers: Record<string, unknown>, queue: QueueName = QueueName.Sessions): void {
  const names: string[] = jobNamesOf(queue);
  const missing = names.filter((n) => typeof handlers[n] !== 'function');
  const unknown = Object.keys(handlers).filter((n) => !names.includes(n));
  if (missing.length || unknown.length) {
    throw new Error(
      `job handlers do not match the job names: ${[...missing.map((n) => `no handler for "${n}"`), ...unknown.map((n) => `handler for unknown job "${n}"`)].join('; ')}`,
    );
  }
}

/** Whether this attempt is the job's last: a failure now is final. */
export function attemptOf(job: Pick<Job, 'attemptsMade' | 'opts'>): AttemptInfo {
  return { final: job.attemptsMade + 1 >= (job.opts.attempts ?? 1) };
}

/** Routes each job of the sessions queue to its handler; no workflow logic lives here. */
@Processor(QueueName.Sessions, { autorun: false })
export class SessionsProcessor extends WorkerHost implements OnModuleInit, OnApplicationBootstrap {
  readonly handlers: JobHandlers;

  constructor(
    advance: AdvanceSessionHandler,
    end: EndSessionHandler,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {
    super();
    this.handlers = {
      [JobName.AdvanceSession]: (data, attempt) => advance.handle(data.sessionId, attempt),
      [JobName.EndSession]: async (data) => {
        await end.handle(data.sessionId, data.endedBy);
        return undefined;
      },
    };
  }

  onModuleInit(): void {
    assertJobHandlers(this.handlers);
  }

  onApplicationBootstrap(): void {
    runWorker(this.worker, SessionsProcessor.name, this.config.jobs.concurrency, this.config.jobs.lockMs);
  }

  override async process(job: SessionsJob, token?: string): Promise<void> {
    const handler = (this.handlers as Record<string, JobHandlers[SessionsJobName] | undefined>)[job.name];
    if (!handler) throw new Error(`no handler for job "${job.name}"`);
    const later = await (handler as (data: unknown, attempt: AttemptInfo) => Promise<NotYet | undefined>)(job.data, attemptOf(job));
    // A booked session's job that came early waits, delayed, for its time (not an attempt).
    if (later) await delayJob(job, later.runAt.getTime(), token);
  }
}
