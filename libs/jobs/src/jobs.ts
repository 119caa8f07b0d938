import type { JobsOptions } from 'bullmq';

/** Queue names. Stable strings: renaming one is a migration of queued work. */
export enum QueueName {
  Sessions = 'sessions',
  /** Notes to helpdesk tickets about their sessions; slow, remote and rate-limited: never in the sessions' way. */
  TicketWritebacks = 'ticket-writebacks',
  /** The timers of recurring schedules and of what the user is told ahead of booked sessions. */
  Schedules = 'schedules',
  /** Outbound webhook deliveries: remote receivers that may be slow or down, kept apart from everything else. */
  Webhooks = 'webhooks',
}

/** Job names. Stable strings, like queue names. */
export enum JobName {
  /** Carries a session from where it stands to its next resting state (active or terminal). */
  AdvanceSession = 'session.advance',
  /** Tells the agent to end an active session (viewer ended or cancelled it). */
  EndSession = 'session.end',
  /** Posts the note a session's outcome owes the ticket that asked for it. */
  TicketWriteback = 'ticket.writeback',
  /** Decides the occurrences of a schedule that are due (run or expired) and plans its next one. */
  ScheduleOccurrence = 'schedule.occurrence',
  /** Tells the user at the device(s) of a booked session ahead of it: a reminder, and an ask for pre-approval. */
  SessionNotice = 'session.notice',
  /** POSTs one webhook delivery to its subscription's URL (an attempt; retries are delayed runs of the same job). */
  WebhookDelivery = 'webhook.deliver',
}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** Every job rcflow runs and its payload. Payloads carry ids, never state. */
export type JobItem =
  | { queue: QueueName.Sessions; name: JobName.AdvanceSession; data: { sessionId: string } }
  | { queue: QueueName.Sessions; name: JobName.EndSession; data: { sessionId: string; endedBy: string } }
  /** `redrive`: 0 for the first run; an administrator's retry of a dead note gives a new number (a new job id). */
  | { queue: QueueName.TicketWritebacks; name: JobName.TicketWriteback; data: { sessionId: string; outcome: string; redrive: number } }
  /** `at`: the occurrence the timer was set for (ISO 8601); the job decides every occurrence due by then. */
  | { queue: QueueName.Schedules; name: JobName.ScheduleOccurrence; data: { scheduleId: string; at: string } }
  /** Either a one-off booking's session, or one occurrence (`at`, ISO 8601) of a schedule on each of its devices. */
  | {
      queue: QueueName.Schedules;
      name: JobName.SessionNotice;
      data: { sessionId: string; scheduleId: null; at: null } | { sessionId: null; scheduleId: string; at: string };
    }
  /** `cycle`: 0 for the first cycle of attempts; an administrator's re-drive starts the next (a new job id). */
  | { queue: QueueName.Webhooks; name: JobName.WebhookDelivery; data: { deliveryId: string; cycle: number } };

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
  [JobName.ScheduleOccurrence]: QueueName.Schedules,
  [JobName.SessionNotice]: QueueName.Schedules,
  [JobName.WebhookDelivery]: QueueName.Webhooks,
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
    case JobName.ScheduleOccurrence:
      return `occurrence.${item.data.scheduleId}.${Date.parse(item.data.at)}`;
    case JobName.SessionNotice:
      return item.data.sessionId !== null ? `notice.${item.data.sessionId}` : `notice.${item.data.scheduleId}.${Date.parse(item.data.at)}`;
    case JobName.WebhookDelivery:
      return `webhook.${item.data.deliveryId}.${item.data.cycle}`;
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
