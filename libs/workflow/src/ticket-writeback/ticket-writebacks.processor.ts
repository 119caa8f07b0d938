import { Inject, OnApplicationBootstrap } from '@nestjs/common';
import { Processor, WorkerHost } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { JobData, JobName, QueueName } from '@rcflow/jobs';
import { delayJob, runWorker } from '../run-worker';
import { TicketWritebackHandler } from './ticket-writeback.handler';

/**
 * Runs the notes owed to tickets, on their own queue so a slow or throttling ticket system never
 * holds a session's job. A note to retry is moved back to delayed for the time the vendor asked
 * (Retry-After) or the backoff says; its attempts are counted in PostgreSQL, not by BullMQ, whose
 * own retries are left for infrastructure errors (the database unreachable).
 */
@Processor(QueueName.TicketWritebacks, { autorun: false })
export class TicketWritebacksProcessor extends WorkerHost implements OnApplicationBootstrap {
  constructor(
    private readonly handler: TicketWritebackHandler,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {
    super();
  }

  onApplicationBootstrap(): void {
    runWorker(this.worker, TicketWritebacksProcessor.name, this.config.tickets.writeback.concurrency, this.config.jobs.lockMs);
  }

  override async process(job: Job<JobData<JobName.TicketWriteback>>, token?: string): Promise<void> {
    if (job.name !== (JobName.TicketWriteback as string)) throw new Error(`no handler for job "${job.name}"`);
    const run = await this.handler.handle(job.data.sessionId, job.data.outcome);
    if (run) await delayJob(job, Date.now() + run.retryInMs, token);
  }
}
