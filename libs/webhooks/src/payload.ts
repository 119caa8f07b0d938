/** The body of every delivery: the event type, when rcflow produced it, and the event. */
export interface WebhookBody<D = Record<string, unknown>> {
  type: string;
  /** ISO 8601: when the event happened. */
  timestamp: string;
  data: D;
}
