import { Inject, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { Processor, WorkerHost } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { JobItem, JobName, QueueName } from '@rcflow/jobs';
import { AdvanceSessionHandler } from './handlers/advance-session.handler';
import { EndSessionHandler } from './handlers/end-session.handler';

type SessionsJob = Job<JobItem['data'], void, JobItem['name']>;

/** Routes each job of the sessions queue to its handler; no workflow logic lives here. */
@Processor(QueueName.Sessions, { autorun: false })
export class SessionsProcessor extends WorkerHost implements OnApplicationBootstrap {
  constructor(
    private readonly advance: AdvanceSessionHandler,
    private readonly end: EndSessionHandler,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {
    super();
  }

  onApplicationBootstrap(): void {
    this.worker.concurrency = this.config.jobs.concurrency;
    // A killed worker's jobs are picked up by another once their lock lapses.
    Object.assign(this.worker.opts, { lockDuration: this.config.jobs.lockMs, stalledInterval: this.config.jobs.lockMs });
    let last = 0;
    this.worker.on('error', (err) => {
      // Redis outages surface here on every retry; say it every few seconds, not thousands of times.
      if (Date.now() - last > 5000) new Logger(SessionsProcessor.name).warn(`worker: ${err.message}`);
      last = Date.now();
    });
    this.worker.run().catch((err: Error) => {
      // A worker loop that died leaves the process useless: stop it so a supervisor restarts it.
      new Logger(SessionsProcessor.name).fatal(`worker stopped: ${err.message}`);
      process.kill(process.pid, 'SIGTERM');
    });
  }

  async process(job: SessionsJob): Promise<void> {
    const item = { name: job.name, data: job.data } as JobItem;
    const final = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    switch (item.name) {
      case JobName.AdvanceSession:
        return this.advance.handle(item.data.sessionId, { final });
      case JobName.EndSession:
        return this.end.handle(item.data.sessionId, item.data.endedBy);
      default:
        throw new Error(`no handler for job "${job.name}"`);
    }
  }
}
