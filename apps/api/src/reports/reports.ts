import { deviceInScopeSql } from '@rcflow/database';
import type { ReportParams } from './report-query';
import type { RollupPlan } from './report-rollup.service';

/** A column of a report: the key of its rows' field and the label a person reads (the CSV header). */
export interface ReportColumn {
  key: string;
  label: string;
}

/** A query parameter a report takes, as the catalogue describes it. */
export interface ReportParamDoc {
  name: string;
  type: 'date-time' | 'uuid' | 'integer';
  required: boolean;
  description: string;
}

/** What a statement of a report is built from: the validated parameters, the caller's scope and a placeholder maker. */
export interface ReportSqlContext {
  params: ReportParams;
  /** The collections the caller's audit.read covers; null: all. */
  scope: readonly string[] | null;
  /** Appends a bind parameter and returns its placeholder. */
  p: (value: unknown) => string;
}

interface ReportBase {
  name: string;
  title: string;
  description: string;
  params: ReportParamDoc[];
  columns: ReportColumn[];
}

/** A report of one row per session, read in keyset pages on (created_at, id): any length, flat memory. */
export interface ListReport extends ReportBase {
  kind: 'list';
  /** The statement of one page; `after` is the (created_at as text, id) of the last row of the previous page. */
  page(ctx: ReportSqlContext, after: [string, string] | null, rows: number): string;
}

/** A report of a bounded number of rows (per day, per check, top N), computed by one statement. */
export interface AggregateReport extends ReportBase {
  kind: 'aggregate';
  sql(ctx: ReportSqlContext): string;
  /** The same report over the rollup's untouched whole days and sessions for the rest (`plan`); the same rows as `sql`. */
  rolledSql?(ctx: ReportSqlContext, plan: RollupPlan): string;
}

export type ReportDefinition = ListReport | AggregateReport;

const RANGE: ReportParamDoc[] = [
  { name: 'from', type: 'date-time', required: false, description: 'Start of the range (inclusive); default: 30 days before `to`' },
  { name: 'to', type: 'date-time', required: false, description: 'End of the range (exclusive); default: now' },
];
const FILTERS: ReportParamDoc[] = [
  { name: 'collectionId', type: 'uuid', required: false, description: 'Only devices in this collection (within your scope)' },
  { name: 'viewerId', type: 'uuid', required: false, description: 'Only sessions of this viewer' },
  { name: 'deviceId', type: 'uuid', required: false, description: 'Only sessions on this device (within your scope)' },
];
const LIMIT: ReportParamDoc = { name: 'limit', type: 'integer', required: false, description: 'Rows (1–1000); default 10' };

/**
 * The conditions every report applies to its sessions (alias `s`): the range on `timeColumn`, the
 * filters, and the caller's scope through the one scope rule (deviceInScopeSql of
 * libs/database, which the audit list uses too).
 */
export function sessionConditions(ctx: ReportSqlContext, timeColumn: string | null): string[] {
  const { params: f, p } = ctx;
  const c: string[] = [];
  if (timeColumn)
    c.push(`${timeColumn} >= ${p(f.from.toISOString())}::timestamptz`, `${timeColumn} < ${p(f.to.toISOString())}::timestamptz`);
  if (f.viewerId) c.push(`s.viewer_id = ${p(f.viewerId)}::uuid`);
  if (f.deviceId) c.push(`s.device_id = ${p(f.deviceId)}::uuid`);
  if (f.collectionId)
    c.push(
      `EXISTS (SELECT 1 FROM collection_members fc WHERE fc.device_id = s.device_id AND fc.collection_id = ${p(f.collectionId)}::uuid)`,
    );
  if (ctx.scope !== null) c.push(deviceInScopeSql('s.device_id', ctx.scope, p));
  return c;
}

const SESSION_COLUMNS: ReportColumn[] = [
  { key: 'requestedAt', label: 'Requested at' },
  { key: 'computer', label: 'Computer' },
  { key: 'deviceId', label: 'Device id' },
  { key: 'viewer', label: 'Viewer' },
  { key: 'viewerId', label: 'Viewer id' },
  { key: 'sessionId', label: 'Session id' },
  { key: 'type', label: 'Type' },
  { key: 'access', label: 'Access' },
  { key: 'state', label: 'Outcome' },
  { key: 'startedAt', label: 'Started at' },
  { key: 'endedAt', label: 'Ended at' },
  { key: 'reason', label: 'Reason' },
  { key: 'ticketRef', label: 'Ticket' },
];

/** One page of sessions matching `extra` and the common conditions, in (created_at, id) order. */
function sessionPage(ctx: ReportSqlContext, after: [string, string] | null, rows: number, extra: string[] = []): string {
  const where = [...sessionConditions(ctx, 's.created_at'), ...extra];
  if (after) where.push(`(s.created_at, s.id) > (${ctx.p(after[0])}::timestamptz, ${ctx.p(after[1])}::uuid)`);
  return `SELECT s.created_at::text AS "_at", s.id AS "sessionId", s.created_at AS "requestedAt", d.hostname AS computer,
      s.device_id AS "deviceId", v.name AS viewer, s.viewer_id AS "viewerId", s.type, s.access, s.state,
      s.started_at AS "startedAt", s.ended_at AS "endedAt", s.reason, s.ticket_ref AS "ticketRef"
    FROM sessions s LEFT JOIN devices d ON d.id = s.device_id LEFT JOIN principals v ON v.id = s.viewer_id
    WHERE ${where.join(' AND ')} ORDER BY s.created_at, s.id LIMIT ${rows}`;
}

/**
 * Rows of (day, device_id, viewer_id, state, sessions, started), alias `s`, with the filters and the
 * scope applied: the rollup's rows for `plan.days`, one row per session of `plan.tail`.
 */
function rolledSource(ctx: ReportSqlContext, plan: RollupPlan): string {
  const { p } = ctx;
  const where = sessionConditions(ctx, null);
  const parts: string[] = [];
  if (plan.days.length > 0)
    parts.push(`SELECT s.day, s.device_id, s.viewer_id, s.state, s.sessions, s.started FROM report_rollups s
      WHERE ${['s.day = ANY(' + p(plan.days) + '::date[])', ...where].join(' AND ')}`);
  if (plan.tail.length > 0) {
    const range = plan.tail
      .map(([a, b]) => `(s.created_at >= ${p(a.toISOString())}::timestamptz AND s.created_at < ${p(b.toISOString())}::timestamptz)`)
      .join(' OR ');
    parts.push(`SELECT (s.created_at AT TIME ZONE 'UTC')::date, s.device_id, s.viewer_id, s.state, 1, (s.started_at IS NOT NULL)::int
      FROM sessions s WHERE ${[`(${range})`, ...where].join(' AND ')}`);
  }
  return parts.join(' UNION ALL ');
}

/** The consent outcomes, in the order the report lists them. */
export const CONSENT_OUTCOMES = ['granted', 'denied', 'timed_out', 'pre_approved', 'not_required'] as const;

function top(by: 'viewer' | 'device'): AggregateReport {
  const [col, key, nameSql, nameKey, nameLabel, other] =
    by === 'viewer'
      ? (['viewer_id', 'viewerId', 'principals n ON n.id = t.k', 'viewer', 'Viewer', 'device_id'] as const)
      : (['device_id', 'deviceId', 'devices n ON n.id = t.k', 'computer', 'Computer', 'viewer_id'] as const);
  const otherKey = by === 'viewer' ? 'devices' : 'viewers';
  return {
    kind: 'aggregate',
    name: `top-${by}s`,
    title: by === 'viewer' ? 'Top viewers' : 'Top devices',
    description:
      by === 'viewer'
        ? 'The viewers with the most session requests in the range: requests, sessions started, refused, distinct computers.'
        : 'The computers with the most session requests in the range: requests, sessions started, refused, distinct viewers.',
    params: [...RANGE, ...FILTERS, LIMIT],
    columns: [
      { key, label: `${nameLabel} id` },
      { key: nameKey, label: nameLabel },
      { key: 'sessions', label: 'Requests' },
      { key: 'started', label: 'Started' },
      { key: 'refused', label: 'Refused' },
      { key: otherKey, label: by === 'viewer' ? 'Computers' : 'Viewers' },
    ],
    sql: (ctx) => `WITH t AS (
        SELECT s.${col} AS k, count(*)::int AS sessions, count(s.started_at)::int AS started,
          (count(*) FILTER (WHERE s.state = 'rejected'))::int AS refused, count(DISTINCT s.${other})::int AS others
        FROM sessions s WHERE ${sessionConditions(ctx, 's.created_at').join(' AND ')}
        GROUP BY s.${col} ORDER BY sessions DESC, k LIMIT ${ctx.p(ctx.params.limit ?? 10)}::int)
      SELECT t.k AS "${key}", n.${by === 'viewer' ? 'name' : 'hostname'} AS "${nameKey}", t.sessions, t.started, t.refused, t.others AS "${otherKey}"
      FROM t LEFT JOIN ${nameSql} ORDER BY t.sessions DESC, t.k`,
    rolledSql: (ctx, plan) => `WITH t AS (
        SELECT s.${col} AS k, sum(s.sessions)::int AS sessions, sum(s.started)::int AS started,
          coalesce(sum(s.sessions) FILTER (WHERE s.state = 'rejected'), 0)::int AS refused, count(DISTINCT s.${other})::int AS others
        FROM (${rolledSource(ctx, plan)}) s
        GROUP BY s.${col} ORDER BY sessions DESC, k LIMIT ${ctx.p(ctx.params.limit ?? 10)}::int)
      SELECT t.k AS "${key}", n.${by === 'viewer' ? 'name' : 'hostname'} AS "${nameKey}", t.sessions, t.started, t.refused, t.others AS "${otherKey}"
      FROM t LEFT JOIN ${nameSql} ORDER BY t.sessions DESC, t.k`,
  };
}

/** Every report, by its stable name. */
export const REPORTS: readonly ReportDefinition[] = [
  {
    kind: 'list',
    name: 'computers-by-user',
    title: 'Remote Control – All computers remote controlled by a specific user',
    description:
      'ConfigMgr report: every session request of one viewer in the range, with the computer, what was asked, how it ended and why.',
    params: [...RANGE, { ...FILTERS[1]!, required: true, description: 'The viewer (a principal id)' }, FILTERS[0]!, FILTERS[2]!],
    columns: SESSION_COLUMNS,
    page: (ctx, after, rows) => sessionPage(ctx, after, rows),
  },
  {
    kind: 'list',
    name: 'remote-control-info',
    title: 'Remote Control – All remote control information',
    description: 'ConfigMgr report: every session request in the range per computer (one computer with deviceId), oldest first.',
    params: [...RANGE, ...FILTERS],
    columns: SESSION_COLUMNS,
    page: (ctx, after, rows) => sessionPage(ctx, after, rows),
  },
  {
    kind: 'aggregate',
    name: 'sessions-per-day',
    title: 'Sessions per day by outcome',
    description: 'Session requests per UTC day of their request, by the state they reached (the outcome once they ended).',
    params: [...RANGE, ...FILTERS],
    columns: [
      { key: 'day', label: 'Day (UTC)' },
      { key: 'outcome', label: 'Outcome' },
      { key: 'sessions', label: 'Sessions' },
    ],
    // Grouped on the day as a timestamp and formatted per group, not per session.
    sql: (ctx) => `SELECT to_char(t.day, 'YYYY-MM-DD') AS day, t.outcome, t.sessions FROM (
        SELECT date_trunc('day', s.created_at AT TIME ZONE 'UTC') AS day, s.state AS outcome, count(*)::int AS sessions
        FROM sessions s WHERE ${sessionConditions(ctx, 's.created_at').join(' AND ')} GROUP BY 1, 2) t
      ORDER BY t.day, t.outcome`,
    rolledSql: (ctx, plan) => `SELECT to_char(t.day, 'YYYY-MM-DD') AS day, t.outcome, t.sessions FROM (
        SELECT s.day, s.state AS outcome, sum(s.sessions)::int AS sessions FROM (${rolledSource(ctx, plan)}) s GROUP BY 1, 2) t
      ORDER BY t.day, t.outcome`,
  },
  {
    kind: 'aggregate',
    name: 'refusals-by-check',
    title: 'Refusals by eligibility check',
    description:
      'Refused eligibility decisions made in the range, counted per check that failed (a decision that failed two checks counts for both).',
    params: [...RANGE, ...FILTERS],
    columns: [
      { key: 'check', label: 'Check' },
      { key: 'number', label: 'Number' },
      { key: 'refusals', label: 'Refusals' },
    ],
    sql: (ctx) => `SELECT c->>'id' AS "check", (c->>'number')::int AS number, count(*)::int AS refusals
      FROM eligibility_decisions e JOIN sessions s ON s.id = e.session_id CROSS JOIN LATERAL jsonb_array_elements(e.checks) c
      WHERE e.eligible = false AND ${sessionConditions(ctx, 'e.evaluated_at').join(' AND ')} AND (c->>'passed')::boolean = false
      GROUP BY 1, 2 ORDER BY refusals DESC, number`,
  },
  {
    kind: 'aggregate',
    name: 'consent-outcomes',
    title: 'Consent outcomes',
    description:
      'Sessions requested in the range that reached the consent step, by how consent went: granted at the prompt, denied, timed out ' +
      '(refused, or started because the timeout allows it), pre-approved ahead of a booking, or not required (no prompt, or unattended).',
    params: [...RANGE, ...FILTERS],
    columns: [
      { key: 'outcome', label: 'Consent' },
      { key: 'sessions', label: 'Sessions' },
    ],
    // Only the `active` events whose consent was not a plain "granted" are read from the audit
    // trail (a small partial index); everything else is on the session row.
    sql: (ctx) => `WITH o AS (
        SELECT CASE
            WHEN s.state = 'denied' THEN 'denied'
            WHEN s.state = 'consent_timeout' THEN 'timed_out'
            WHEN s.consent_rule IS DISTINCT FROM 'prompt_user' THEN 'not_required'
            WHEN x.consent IS NOT NULL THEN x.consent
            ELSE 'granted' END AS outcome
        FROM sessions s LEFT JOIN (
            SELECT a.session_id, a.data->>'consent' AS consent FROM audit_events a
            WHERE a.action = 'session.active' AND (a.data->>'consent') IN ('pre_approved', 'timed_out')
              AND a.occurred_at >= ${ctx.p(ctx.params.from.toISOString())}::timestamptz) x ON x.session_id = s.id
        WHERE ${sessionConditions(ctx, 's.created_at').join(' AND ')}
          AND (s.started_at IS NOT NULL OR s.state IN ('denied', 'consent_timeout')))
      SELECT k.outcome, count(o.outcome)::int AS sessions
      FROM unnest(${ctx.p(CONSENT_OUTCOMES)}::text[]) WITH ORDINALITY AS k(outcome, n) LEFT JOIN o ON o.outcome = k.outcome
      GROUP BY k.outcome, k.n ORDER BY k.n`,
  },
  {
    kind: 'list',
    name: 'unattended-sessions',
    title: 'Unattended sessions',
    description:
      'Sessions requested in the range that were allowed to a computer with nobody at it (no user or a locked screen), with their reason and ticket.',
    params: [...RANGE, ...FILTERS],
    columns: SESSION_COLUMNS,
    page: (ctx, after, rows) => sessionPage(ctx, after, rows, [`s.consent_rule = 'unattended_allowed'`]),
  },
  {
    kind: 'aggregate',
    name: 'durations',
    title: 'Time to start and session duration',
    description:
      'For sessions requested in the range: seconds from the request (a booking: its start time) to active, and from active to the end, p50 and p95.',
    params: [...RANGE, ...FILTERS],
    columns: [
      { key: 'measure', label: 'Measure' },
      { key: 'sessions', label: 'Sessions' },
      { key: 'p50Seconds', label: 'p50 (s)' },
      { key: 'p95Seconds', label: 'p95 (s)' },
    ],
    sql: (ctx) => `WITH d AS (
        SELECT extract(epoch FROM s.started_at - greatest(s.created_at, coalesce(s.not_before, s.created_at))) AS wait,
               extract(epoch FROM s.ended_at - s.started_at) AS lasted
        FROM sessions s WHERE ${sessionConditions(ctx, 's.created_at').join(' AND ')} AND s.started_at IS NOT NULL)
      SELECT m.measure, m.sessions, round(m.p50::numeric, 3)::float8 AS "p50Seconds", round(m.p95::numeric, 3)::float8 AS "p95Seconds"
      FROM (
        SELECT 'request_to_active' AS measure, 1 AS n, count(wait)::int AS sessions,
          percentile_cont(0.5) WITHIN GROUP (ORDER BY wait) AS p50, percentile_cont(0.95) WITHIN GROUP (ORDER BY wait) AS p95 FROM d
        UNION ALL
        SELECT 'session_duration', 2, count(lasted)::int,
          percentile_cont(0.5) WITHIN GROUP (ORDER BY lasted), percentile_cont(0.95) WITHIN GROUP (ORDER BY lasted) FROM d) m
      ORDER BY m.n`,
  },
  top('viewer'),
  top('device'),
];

export const REPORTS_BY_NAME: ReadonlyMap<string, ReportDefinition> = new Map(REPORTS.map((r) => [r.name, r]));
