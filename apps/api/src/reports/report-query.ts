import { z } from 'zod';
import { ValidationFailed } from '@rcflow/domain';
import { dateTime, parseOrThrow, uuid } from '../common/validation';

export const REPORT_FORMATS = ['json', 'csv', 'ndjson'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

const DAY_MS = 86_400_000;
/** The range a report covers when the caller names none: the last 30 days. */
export const DEFAULT_RANGE_DAYS = 30;

/** The query string of GET /v1/reports/:name, as sent. */
export const reportQuerySchema = z.strictObject({
  from: dateTime.optional(),
  to: dateTime.optional(),
  collectionId: uuid.optional(),
  viewerId: uuid.optional(),
  deviceId: uuid.optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  format: z.enum(REPORT_FORMATS).optional(),
});

/** A report's parameters once validated: the range resolved to instants, `from` inclusive, `to` exclusive. */
export interface ReportParams {
  from: Date;
  to: Date;
  collectionId?: string;
  viewerId?: string;
  deviceId?: string;
  limit?: number;
}

/**
 * The query of a report, validated: unknown parameters, malformed values, `from` not before `to`
 * and a range longer than `maxSpanDays` are each a 400 naming the field. Without `to` the range
 * ends now; without `from` it starts 30 days before its end
 * (or the longest span allowed, when shorter).
 */
export function parseReportQuery(query: unknown, maxSpanDays: number, now: Date = new Date()): ReportParams & { format?: ReportFormat } {
  const q = parseOrThrow(reportQuerySchema, query, 'query');
  const to = q.to ? new Date(q.to) : now;
  const from = q.from ? new Date(q.from) : new Date(to.getTime() - Math.min(DEFAULT_RANGE_DAYS, maxSpanDays) * DAY_MS);
  if (from.getTime() >= to.getTime()) {
    const message = `from (${from.toISOString()}) must be before to (${to.toISOString()})`;
    throw new ValidationFailed(`invalid query: from: ${message}`, [{ path: 'from', message }]);
  }
  if (to.getTime() - from.getTime() > maxSpanDays * DAY_MS) {
    const field = q.to || !q.from ? 'to' : 'from';
    const message = `the range spans more than ${maxSpanDays} days (REPORT_MAX_SPAN_DAYS); ask for a shorter one`;
    throw new ValidationFailed(`invalid query: ${field}: ${message}`, [{ path: field, message }]);
  }
  const { format, collectionId, viewerId, deviceId, limit } = q;
  return {
    from,
    to,
    ...(collectionId && { collectionId }),
    ...(viewerId && { viewerId }),
    ...(deviceId && { deviceId }),
    ...(limit !== undefined && { limit }),
    ...(format && { format }),
  };
}

/**
 * The format asked for: `format` wins; else the Accept header (text/csv, application/x-ndjson);
 * else JSON.
 */
export function negotiateFormat(format: ReportFormat | undefined, accept: string | undefined): ReportFormat {
  if (format) return format;
  const a = (accept ?? '').toLowerCase();
  if (a.includes('text/csv')) return 'csv';
  if (a.includes('application/x-ndjson')) return 'ndjson';
  return 'json';
}
