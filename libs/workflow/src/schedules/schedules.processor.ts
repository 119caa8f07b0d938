import { Inject, OnApplicationBootstrap, OnModuleInit } from '@nestjs/common';
import { Processor, WorkerHost } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { JobData, JobItem, JobName, JobNameOf, QueueName } from '@rcflow/jobs';
import type { NotYet } from '../handlers/advance-session.handler';
import { delayJob, runWorker } from '../run-worker';
import { assertJobHandlers } from '../sessions.processor';
import { SessionNoticeHandler } from '../notices/session-notice.handler';
import { ScheduleOccurrenceHandler } from './schedule-occurrence.handler';

type SchedulesJobName = JobNameOf<QueueName.Schedules>;
type SchedulesHandlers = { [N in SchedulesJobName]: (data: JobData<N>) => Promise<NotYet | undefined> };

/**
 * The timers of schedules, on their own queue: a minute in which thousands of occurrences fall due
 * queues here, not in front of the sessions those occurrences asked for. An occurrence's timer that
 * fired early waits again, delayed, for its time.
 */
@Processor(QueueName.Schedules, { autorun: false })
export class SchedulesProcessor extends WorkerHost implements OnModuleInit, OnApplicationBootstrap {
  readonly handlers: SchedulesHandlers;

  constructor(
    occurrences: ScheduleOccurrenceHandler,
    notices: SessionNoticeHandler,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {
    super();
    this.handlers = {
      [JobName.ScheduleOccurrence]: (data) => occurrences.handle(data.scheduleId, data.at),
      [JobName.SessionNotice]: async (data) => {
        await notices.handle(data);
        return undefined;
      },
    };
  }

  onModuleInit(): void {
    assertJobHandlers(this.handlers, QueueName.Schedules);
  }

  onApplicationBootstrap(): void {
    runWorker(this.worker, SchedulesProcessor.name, this.config.jobs.concurrency, this.config.jobs.lockMs);
  }

  override async process(job: Job<JobItem['data'], void>, token?: string): Promise<void> {
    const handler = (this.handlers as Record<string, ((data: unknown) => Promise<NotYet | undefined>) | undefined>)[job.name];
    if (!handler) throw new Error(`no handler for job "${job.name}"`);
    const later = await handler(job.data);
    if (later) await delayJob(job, later.runAt.getTime(), token);
  }
}
