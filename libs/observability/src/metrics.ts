import { CHECK_IDS, SESSION_STATES, TRANSITIONS, type CheckId, type SessionState } from '@rcflow/domain';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * rcflow's Prometheus metrics, one registry per process. Every label takes its values from a
 * fixed set (states, check ids, queue names, commands, outcomes): nothing a caller sends becomes
 * a label, so the number of series is bounded whatever happens.
 */
export const metricsRegistry = new Registry();

/** Where a session came from before its first state: it had none. */
export const NO_STATE = 'none';

const transitions = new Counter({
  name: 'rcflow_session_transitions_total',
  help: 'Session lifecycle transitions committed by this process, by state left and state entered (from="none": a request accepted).',
  labelNames: ['from', 'to'] as const,
  registers: [metricsRegistry],
});

const requestToActive = new Histogram({
  name: 'rcflow_session_request_to_active_seconds',
  help: 'Time from a session request (or its booked start) to the session becoming active.',
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300],
  registers: [metricsRegistry],
});

const sessionDuration = new Histogram({
  name: 'rcflow_session_duration_seconds',
  help: 'How long sessions were active, from active to ended (end="ended") or to interrupted (end="interrupted").',
  labelNames: ['end'] as const,
  buckets: [10, 30, 60, 300, 600, 1800, 3600, 7200, 14_400, 28_800, 86_400],
  registers: [metricsRegistry],
});

const refusals = new Counter({
  name: 'rcflow_eligibility_refusals_total',
  help: 'Eligibility checks that failed in committed decisions refusing a session (one refusal may fail several checks).',
  labelNames: ['check'] as const,
  registers: [metricsRegistry],
});

const batchSize = new Histogram({
  name: 'rcflow_transition_batch_size',
  help: 'Session transitions committed per statement.',
  buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
  registers: [metricsRegistry],
});

/** The agent commands a worker waits on (AgentTimeoutError's step). */
export const AGENT_COMMANDS = ['apply_settings', 'start_session', 'end_session', 'session_notice'] as const;
export type AgentCommandName = (typeof AGENT_COMMANDS)[number];

const commandTimeouts = new Counter({
  name: 'rcflow_agent_command_timeouts_total',
  help: 'Agent commands that got no answer within their timeout, by command (other: a command not listed).',
  labelNames: ['command'] as const,
  registers: [metricsRegistry],
});

/** What became of one attempt to deliver a webhook. */
export const WEBHOOK_OUTCOMES = ['delivered', 'retry', 'dead'] as const;
export type WebhookOutcome = (typeof WEBHOOK_OUTCOMES)[number];

const webhookDeliveries = new Counter({
  name: 'rcflow_webhook_deliveries_total',
  help: 'Webhook delivery attempts by outcome: delivered, retry (failed, to be tried again), dead (dead-lettered).',
  labelNames: ['outcome'] as const,
  registers: [metricsRegistry],
});

/** What became of one attempt to write a note to a ticket. */
export const WRITEBACK_OUTCOMES = ['sent', 'retry', 'dead', 'skipped'] as const;
export type WritebackOutcome = (typeof WRITEBACK_OUTCOMES)[number];

const writebacks = new Counter({
  name: 'rcflow_ticket_writebacks_total',
  help: 'Ticket note attempts by outcome: sent, retry (failed, to be tried again), dead, skipped (the integration has no outbound URL).',
  labelNames: ['outcome'] as const,
  registers: [metricsRegistry],
});

// Every series that can exist starts at zero, so rate() and increase() see the first event;
// the hot path increments children looked up once.
const zeroed = <L extends string>(counter: Counter<L>, labels: Record<L, string>): Counter.Internal => {
  counter.inc(labels, 0);
  return counter.labels(labels);
};
const transitionChildren = new Map<string, Counter.Internal>();
for (const from of SESSION_STATES)
  for (const to of TRANSITIONS[from]) transitionChildren.set(`${from}>${to}`, zeroed(transitions, { from, to }));
for (const to of ['requested', 'scheduled'] as const)
  transitionChildren.set(`${NO_STATE}>${to}`, zeroed(transitions, { from: NO_STATE, to }));
const refusalChildren = new Map<string, Counter.Internal>(CHECK_IDS.map((check) => [check, zeroed(refusals, { check })]));
const timeoutChildren = new Map<string, Counter.Internal>(
  [...AGENT_COMMANDS, 'other'].map((command) => [command, zeroed(commandTimeouts, { command })]),
);
for (const outcome of WEBHOOK_OUTCOMES) zeroed(webhookDeliveries, { outcome });
for (const outcome of WRITEBACK_OUTCOMES) zeroed(writebacks, { outcome });
for (const end of ['ended', 'interrupted']) sessionDuration.zero({ end });

/** Counts a committed transition (`from` null: a request accepted in `to`). Moves the lifecycle does not allow are not counted. */
export function countTransition(from: SessionState | null, to: SessionState): void {
  transitionChildren.get(`${from ?? NO_STATE}>${to}`)?.inc();
}

export function observeRequestToActive(seconds: number): void {
  if (seconds >= 0) requestToActive.observe(seconds);
}

export function observeSessionDuration(end: 'ended' | 'interrupted', seconds: number): void {
  if (seconds >= 0) sessionDuration.observe({ end }, seconds);
}

/** Counts the failed checks of a committed refusal. */
export function countRefusal(check: CheckId): void {
  refusalChildren.get(check)?.inc();
}

export function observeTransitionBatch(size: number): void {
  batchSize.observe(size);
}

/** Counts an agent command that timed out; `command` is AgentTimeoutError's step. */
export function countAgentCommandTimeout(command: string): void {
  (timeoutChildren.get(command) ?? timeoutChildren.get('other'))!.inc();
}

/** Counts one webhook delivery attempt by what became of it (for the webhook sender). */
export function countWebhookDelivery(outcome: WebhookOutcome): void {
  webhookDeliveries.inc({ outcome });
}

/** Counts one ticket note attempt by what became of it. */
export function countTicketWriteback(outcome: WritebackOutcome): void {
  writebacks.inc({ outcome });
}

let processMetrics = false;
/** Node's process metrics (CPU, memory, event loop lag, GC, handles), prefixed `rcflow_`; entry points turn them on once. */
export function enableProcessMetrics(): void {
  if (processMetrics) return;
  processMetrics = true;
  collectDefaultMetrics({ register: metricsRegistry, prefix: 'rcflow_' });
}

/** The registry in Prometheus' text format, with its content type. Gauges read at scrape time are read now. */
export async function renderMetrics(): Promise<{ contentType: string; body: string }> {
  return { contentType: metricsRegistry.contentType, body: await metricsRegistry.metrics() };
}
