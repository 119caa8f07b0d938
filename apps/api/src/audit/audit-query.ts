import { escapeLiteral } from 'pg';
import { z } from 'zod';
import { deviceInScopeSql } from '@rcflow/database';
import { dateTime, uuid } from '../common/validation';

/** The filters of the audit list and of the export. */
export const auditFilters = {
  sessionId: uuid.optional(),
  deviceId: uuid.optional(),
  viewerId: uuid.optional(),
  actorId: uuid.optional(),
  action: z
    .string()
    .regex(/^[a-z_.]{1,64}$/)
    .optional(),
  from: dateTime.optional(),
  to: dateTime.optional(),
};
export const auditFilterQuery = z.strictObject(auditFilters);
export type AuditFilter = z.infer<typeof auditFilterQuery>;

interface Condition {
  column: string;
  op: '=' | '>=' | '<';
  value: string;
  type: 'uuid' | 'text' | 'timestamptz';
}

function conditions(f: AuditFilter): Condition[] {
  const c: Condition[] = [];
  if (f.sessionId) c.push({ column: 'session_id', op: '=', value: f.sessionId, type: 'uuid' });
  if (f.deviceId) c.push({ column: 'device_id', op: '=', value: f.deviceId, type: 'uuid' });
  if (f.viewerId) c.push({ column: 'viewer_id', op: '=', value: f.viewerId, type: 'uuid' });
  if (f.actorId) c.push({ column: 'actor_id', op: '=', value: f.actorId, type: 'uuid' });
  if (f.action) c.push({ column: 'action', op: '=', value: f.action, type: 'text' });
  if (f.from) c.push({ column: 'occurred_at', op: '>=', value: new Date(f.from).toISOString(), type: 'timestamptz' });
  if (f.to) c.push({ column: 'occurred_at', op: '<', value: new Date(f.to).toISOString(), type: 'timestamptz' });
  return c;
}

/** The filters as SQL with bind parameters appended to `params`. */
export function filterSql(f: AuditFilter, params: unknown[]): string[] {
  return conditions(f).map((c) => {
    params.push(c.value);
    return `${c.column} ${c.op} $${params.length}::${c.type}`;
  });
}

/** The filters as SQL with quoted literals, for statements that take no parameters (COPY). */
export function filterSqlLiterals(f: AuditFilter): string[] {
  return conditions(f).map((c) => `${c.column} ${c.op} ${escapeLiteral(c.value)}::${c.type}`);
}

/**
 * The events a caller whose audit.read covers `scope` may see, as one more condition (none for a
 * caller over all collections, so its statement stays the one BENCHMARKS.md measured): events
 * about a device in scope. An event about no device (principals, keys, settings, collections) is
 * global, visible only over all collections; a session's events carry its device.
 */
export function auditScopeSql(scope: readonly string[] | null, p: (value: unknown) => string): string[] {
  if (scope === null) return [];
  return [`audit_events.device_id IS NOT NULL`, deviceInScopeSql('audit_events.device_id', scope, p)];
}

/** `auditScopeSql` with the scope as a literal, for COPY. */
export function auditScopeSqlLiterals(scope: readonly string[] | null): string[] {
  return auditScopeSql(scope, (ids) => escapeLiteral(`{${(ids as string[]).join(',')}}`));
}

// The audit event as the API shows it lives in libs/audit (webhook deliveries carry the same view).
export { AUDIT_ITEM_COLUMNS, auditItem, type AuditEventRow, type AuditItem } from '@rcflow/audit';
