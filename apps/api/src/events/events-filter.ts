import { z } from 'zod';
import { ValidationFailed } from '@rcflow/domain';
import { deviceInScopeSql } from '@rcflow/database';
import { uuid } from '../common/validation';
import { text } from '../sessions/sessions.schemas';

const MAX_BIGINT = 2n ** 63n - 1n;
/** An audit event id: a PostgreSQL bigint as decimal digits. */
export const eventId = z
  .string()
  .regex(/^(0|[1-9]\d{0,18})$/, { message: 'must be an audit event id (decimal digits)', abort: true })
  .refine((s) => BigInt(s) <= MAX_BIGINT, 'must be an audit event id (at most 9223372036854775807)');

/** At most this many entries in `types`. */
export const MAX_TYPES = 32;
/** An action (`session.active`) or a prefix ending in a dot (`session.`). */
const TYPE = /^[a-z_]{1,32}(\.[a-z_]{1,32}){0,3}\.?$/;

/** `types`: comma-separated action names or prefixes ending in a dot, e.g. `session.,api_key.revoked`. */
const types = z
  .string()
  .max(2000)
  .transform((raw, ctx) => {
    const items = raw.split(',').map((s) => s.trim());
    const bad = items.filter((s) => !TYPE.test(s));
    if (bad.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `not an action name or a prefix ending in a dot (like session.active or session.): ${bad
          .map((b) => JSON.stringify(b.slice(0, 80)))
          .join(', ')}`,
      });
      return z.NEVER;
    }
    if (items.length > MAX_TYPES) {
      ctx.addIssue({ code: 'custom', message: `at most ${MAX_TYPES} types` });
      return z.NEVER;
    }
    return [...new Set(items)];
  });

/** The query of GET /v1/events. */
export const eventsQuery = z.strictObject({
  sessionId: uuid.optional(),
  deviceId: uuid.optional(),
  viewerId: uuid.optional(),
  ticketRef: text(200).optional(),
  types: types.optional(),
  /** Resume after this event id (the Last-Event-ID header wins when both are given); 0 replays from the start, within the cap. */
  after: eventId.optional(),
  /** false: end the stream once it has caught up with the head (replay only). */
  follow: z
    .enum(['true', 'false'], { message: 'must be true or false' })
    .transform((v) => v === 'true')
    .optional(),
});
export type EventsQuery = z.infer<typeof eventsQuery>;

/** What a subscriber chose to see: the query's filters. */
export interface EventFilter {
  sessionId?: string | undefined;
  deviceId?: string | undefined;
  viewerId?: string | undefined;
  ticketRef?: string | undefined;
  /** Exact actions, and prefixes (ending in a dot). */
  types?: string[] | undefined;
}

/**
 * What a caller may see: the audit's scope rule (`scope` = the collections of their audit.read,
 * null over all, [] none: events about a device in scope) and, whoever they are, the events of
 * the sessions they requested or are the viewer of.
 */
export interface EventAccess {
  principalId: string;
  scope: readonly string[] | null;
}

/** A row of the events' select list (EVENT_COLUMNS): the audit item's columns and what scope and filters need. */
export interface EventRow {
  tail_id: string;
  action: string;
  session_id: string | null;
  device_id: string | null;
  viewer_id: string | null;
  ticket_ref: string | null;
  /** The collections the event's device is in now. */
  device_collections: string[] | null;
  /** The requester and viewer of the event's session. */
  session_requester: string | null;
  session_viewer: string | null;
  [column: string]: unknown;
}

/** What a row of audit_events needs to be filtered and shown: the audit item's columns, the device's collections and the session's people. */
export const EVENT_COLUMNS = `id, stream, seq, occurred_at, actor_id, actor_kind, action, outcome, session_id, device_id, viewer_id,
  ticket_ref, reason, data, hash,
  ARRAY(SELECT cm.collection_id FROM collection_members cm WHERE cm.device_id = audit_events.device_id) AS device_collections,
  (SELECT s.requester_id FROM sessions s WHERE s.id = audit_events.session_id) AS session_requester,
  (SELECT s.viewer_id FROM sessions s WHERE s.id = audit_events.session_id) AS session_viewer`;

function typeMatches(action: string, types: string[]): boolean {
  return types.some((t) => (t.endsWith('.') ? action.startsWith(t) : action === t));
}

/** Whether `row` passes the caller's access and the filters (the live feed's test; `eventsWhereSql` says the same in SQL). */
export function eventVisible(row: EventRow, filter: EventFilter, access: EventAccess): boolean {
  if (filter.sessionId !== undefined && row.session_id !== filter.sessionId) return false;
  if (filter.deviceId !== undefined && row.device_id !== filter.deviceId) return false;
  if (filter.viewerId !== undefined && row.viewer_id !== filter.viewerId) return false;
  if (filter.ticketRef !== undefined && row.ticket_ref !== filter.ticketRef) return false;
  if (filter.types !== undefined && !typeMatches(row.action, filter.types)) return false;
  if (access.scope === null) return true;
  if (row.device_id !== null && (row.device_collections ?? []).some((c) => access.scope!.includes(c))) return true;
  return row.session_id !== null && (row.session_requester === access.principalId || row.session_viewer === access.principalId);
}

/** `eventVisible` as SQL conditions over audit_events, with parameters appended to `params`. */
export function eventsWhereSql(filter: EventFilter, access: EventAccess, params: unknown[]): string[] {
  const p = (v: unknown) => `$${params.push(v)}`;
  const where: string[] = [];
  if (filter.sessionId !== undefined) where.push(`session_id = ${p(filter.sessionId)}::uuid`);
  if (filter.deviceId !== undefined) where.push(`device_id = ${p(filter.deviceId)}::uuid`);
  if (filter.viewerId !== undefined) where.push(`viewer_id = ${p(filter.viewerId)}::uuid`);
  if (filter.ticketRef !== undefined) where.push(`ticket_ref = ${p(filter.ticketRef)}::text`);
  if (filter.types !== undefined) {
    const exact = filter.types.filter((t) => !t.endsWith('.'));
    // A prefix holds only [a-z_.]: no LIKE wildcard to escape.
    const prefixes = filter.types.filter((t) => t.endsWith('.')).map((t) => `${t}%`);
    where.push(`(action = ANY(${p(exact)}::text[]) OR action LIKE ANY(${p(prefixes)}::text[]))`);
  }
  if (access.scope !== null) {
    const me = p(access.principalId);
    where.push(`((audit_events.device_id IS NOT NULL AND ${deviceInScopeSql('audit_events.device_id', access.scope, p)})
      OR EXISTS (SELECT 1 FROM sessions s WHERE s.id = audit_events.session_id AND (s.requester_id = ${me}::uuid OR s.viewer_id = ${me}::uuid)))`);
  }
  return where;
}

/** The position to resume after: the Last-Event-ID header wins over `?after=` (a reconnecting EventSource keeps its URL). */
export function resumePoint(lastEventId: string | string[] | undefined, after: string | undefined): string | undefined {
  if (lastEventId === undefined) return after;
  const value = Array.isArray(lastEventId) ? lastEventId[0] : lastEventId;
  if (value === undefined || value.trim() === '') return after;
  const parsed = eventId.safeParse(value.trim());
  if (!parsed.success) {
    const message = parsed.error.issues[0]?.message ?? 'invalid';
    throw new ValidationFailed(`invalid Last-Event-ID header: ${message}`, [{ path: 'Last-Event-ID', message }]);
  }
  return parsed.data;
}
