import { Inject, OnApplicationBootstrap, OnModuleInit } from '@nestjs/common';
import { Processor, WorkerHost } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { JobData, JobItem, JobName, JobNameOf, QueueName } from '@rcflow/jobs';
import { SessionNoticeHandler } from '../notices/session-notice.handler';
import { runWorker } from '../run-worker';
import { assertJobHandlers } from '../sessions.processor';

type SchedulesJobName = JobNameOf<QueueName.Schedules>;
type SchedulesHandlers = { [N in SchedulesJobName]: (data: JobData<N>) => Promise<void> };

/**
 * Routes the schedules queue's jobs to their handlers.
 *
 * BRANCH `notices` ONLY: a minimal stand-in so that booked sessions' notices run end to end before
 * the schedules work lands; the lead's processor replaces this file and routes
 * JobName.SessionNotice to SessionNoticeHandler.handle the same way.
 */
@Processor(QueueName.Schedules, { autorun: false })
export class SchedulesProcessor extends WorkerHost implements OnModuleInit, OnApplicationBootstrap {
  readonly handlers: SchedulesHandlers;

  constructor(
    notices: SessionNoticeHandler,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {
    super();
    this.handlers = {
      [JobName.ScheduleOccurrence]: () => Promise.reject(new Error('not built on this branch')),
      [JobName.SessionNotice]: (data) => notices.handle(data),
    };
  }

  onModuleInit(): void {
    assertJobHandlers(this.handlers, QueueName.Schedules);
  }

  onApplicationBootstrap(): void {
    runWorker(this.worker, SchedulesProcessor.name, this.config.jobs.concurrency, this.config.jobs.lockMs);
  }

  override async process(job: Job<JobItem['data'], void, JobItem['name']>): Promise<void> {
    const handler = (this.handlers as Record<string, ((data: unknown) => Promise<void>) | undefined>)[job.name];
    if (!handler) throw new Error(`no handler for job "${job.name}"`);
    await handler(job.data);
  }
}
