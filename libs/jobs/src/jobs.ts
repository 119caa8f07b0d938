import type { JobsOptions } from 'bullmq';

/** Queue names. Stable strings: renaming one is a migration of queued work. */
export enum QueueName {
  Sessions = 'sessions',
  /** Notes to helpdesk tickets about their sessions; slow, remote and rate-limited: never in the sessions' way. */
  TicketWritebacks = 'ticket-writebacks',
}

/** Job names. Stable strings, like queue names. */
export enum JobName {
  /** Carries a session from where it stands to its next resting state (active or terminal). */
  AdvanceSession = 'session.advance',
  /** Tells the agent to end an active session (viewer ended or cancelled it). */
  EndSession = 'session.end',
  /** Posts the note a session's outcome owes the ticket that asked for it. */
  TicketWriteback = 'ticket.writeback',
}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** Every job rcflow runs and its payload. Payloads carry ids, never state. */
export type JobItem =
  | { queue: QueueName.Sessions; name: JobName.AdvanceSession; data: { sessionId: string } }
  | { queue: QueueName.Sessions; name: JobName.EndSession; data: { sessionId: string; endedBy: string } }
  /** `redrive`: 0 for the first run; an administrator's retry of a dead note gives a new number (a new job id). */
  | { queue: QueueName.TicketWritebacks; name: JobName.TicketWriteback; data: { sessionId: string; outcome: string; redrive: number } };

// Compile-time guard: payloads must be JSON-compatible.
type AssertJson<T extends Record<string, Json>> = T;
export type _PayloadsAreJson = AssertJson<JobItem['data']>;

export type JobData<N extends JobName> = Extract<JobItem, { name: N }>['data'];

/** The job names a queue carries. */
export type JobNameOf<Q extends QueueName> = Extract<JobItem, { queue: Q }>['name'];

/** Which queue carries each job; a job name belongs to exactly one queue. */
export const QUEUE_OF_JOB: Readonly<Record<JobName, QueueName>> = Object.freeze({
  [JobName.AdvanceSession]: QueueName.Sessions,
  [JobName.EndSession]: QueueName.Sessions,
  [JobName.TicketWriteback]: QueueName.TicketWritebacks,
});

/** The job names of one queue. */
export function jobNamesOf(queue: QueueName): JobName[] {
  return Object.values(JobName).filter((n) => QUEUE_OF_JOB[n] === queue);
}

/** The job id that deduplicates an item while the earlier job is still stored. */
export function jobIdOf(item: JobItem): string {
  switch (item.name) {
    case JobName.AdvanceSession:
      return `advance.${item.data.sessionId}`;
    case JobName.EndSession:
      return `end.${item.data.sessionId}`;
    case JobName.TicketWriteback:
      return `writeback.${item.data.sessionId}.${item.data.outcome}${item.data.redrive ? `.${item.data.redrive}` : ''}`;
  }
}

export interface JobPolicy {
  attempts: number;
  backoffMs: number;
  keepCompletedSeconds: number;
  keepFailedSeconds: number;
}

/** Retries, backoff and retention for every job, set here and nowhere else. */
export function defaultJobOptions(policy: JobPolicy): JobsOptions {
  return {
    attempts: policy.attempts,
    backoff: { type: 'exponential', delay: policy.backoffMs },
    removeOnComplete: { age: policy.keepCompletedSeconds },
    removeOnFail: { age: policy.keepFailedSeconds },
  };
}
