import { Inject, OnApplicationBootstrap } from '@nestjs/common';
import { Processor, WorkerHost } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { JobData, JobName, QueueName } from '@rcflow/jobs';
import { delayJob, runWorker } from '../run-worker';
import { WebhookDeliveryHandler } from './webhook-delivery.handler';

/**
 * Runs webhook deliveries on their own queue, so a slow or failing receiver never holds other
 * work. A delivery to retry goes back to delayed for its backoff; attempts are counted in
 * PostgreSQL, BullMQ's own retries being left for infrastructure errors (the database unreachable).
 */
@Processor(QueueName.Webhooks, { autorun: false })
export class WebhooksProcessor extends WorkerHost implements OnApplicationBootstrap {
  constructor(
    private readonly handler: WebhookDeliveryHandler,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {
    super();
  }

  onApplicationBootstrap(): void {
    runWorker(this.worker, WebhooksProcessor.name, this.config.webhooks.concurrency, this.config.jobs.lockMs);
  }

  override async process(job: Job<JobData<JobName.WebhookDelivery>>, token?: string): Promise<void> {
    if (job.name !== (JobName.WebhookDelivery as string)) throw new Error(`no handler for job "${job.name}"`);
    const run = await this.handler.handle(job.data.deliveryId, job.data.cycle);
    if (run) await delayJob(job, Date.now() + run.retryInMs, token);
  }
}
