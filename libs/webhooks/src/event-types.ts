/*
 * Which events a subscription hears: audit action names (`session.active`), a prefix ending in
 * `.*` (`session.*`: every action that starts with `session.`), or `*` (every event).
 */

/** One event type pattern as a subscription stores it. */
export const EVENT_TYPE_PATTERN = /^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$/;

/** The event type of the test delivery (POST /v1/webhooks/{id}/test): sent whatever the subscription's types. */
export const PING_EVENT_TYPE = 'webhook.ping';

/** Whether `action` is one of `patterns`. */
export function matchesEventType(patterns: readonly string[], action: string): boolean {
  return patterns.some((p) => p === '*' || p === action || (p.endsWith('.*') && action.startsWith(p.slice(0, -1))));
}
