import { Inject, Injectable, OnApplicationBootstrap } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { DataSource } from 'typeorm';
import { OUTBOX_QUEUES } from '@rcflow/jobs';
import { QUEUE_STATES, setAgentsConnectedSource, setOutboxStatsSource, setQueueCountsSource } from '@rcflow/observability';
import { AgentGateway } from '../agents/agent-gateway';

/** The outbox is counted up to this many rows: a scrape stays cheap however far behind the relay is. */
const OUTBOX_COUNT_CAP = 100_000;

/**
 * What the API's `/metrics` reads at scrape time (cached a few seconds, time-bounded): BullMQ's job
 * counts per queue (through the relay's producers, which fail fast while Redis is down), the
 * outbox's size and the age of its oldest row, and the agents connected here.
 */
@Injectable()
export class MetricsSources implements OnApplicationBootstrap {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(OUTBOX_QUEUES) private readonly queues: ReadonlyMap<string, Queue>,
    private readonly agents: AgentGateway,
  ) {}

  onApplicationBootstrap(): void {
    setQueueCountsSource(async () => {
      const entries = await Promise.all([...this.queues].map(async ([name, q]) => [name, await q.getJobCounts(...QUEUE_STATES)] as const));
      return Object.fromEntries(entries);
    });
    setOutboxStatsSource(async () => {
      const [row] = await this.dataSource.query<{ pending: number; age: number | null }[]>(
        `SELECT (SELECT count(*) FROM (SELECT 1 FROM outbox LIMIT ${OUTBOX_COUNT_CAP}) o)::int AS pending,
                (SELECT extract(epoch FROM now() - created_at)::float8 FROM outbox ORDER BY id LIMIT 1) AS age`,
      );
      return { pending: row?.pending ?? 0, oldestAgeSeconds: Math.max(0, row?.age ?? 0) };
    });
    setAgentsConnectedSource(() => this.agents.connectedCount());
  }
}
