import type { EntityManager } from 'typeorm';
import { AUDIT_ITEM_COLUMNS, type AuditEventRow } from '@rcflow/audit';

/** A page of the audit trail in the order events are to be told, and the position after it. */
export interface AuditPage {
  rows: AuditEventRow[];
  position: unknown;
}

/**
 * Where the dispatcher reads the audit trail from. INTERIM: reads by id after the last id seen,
 * which can skip an event whose transaction commits after a later id's (ids are drawn before
 * commit); to be replaced by libs/audit's gap-safe tail (branch `events`, audit-tail.ts).
 */
export async function readAuditAfter(manager: EntityManager, position: unknown, limit: number): Promise<AuditPage> {
  const after = (position as { after?: string } | null)?.after ?? '0';
  const rows = await manager.query<AuditEventRow[]>(
    `SELECT ${AUDIT_ITEM_COLUMNS} FROM audit_events WHERE id > $1::bigint ORDER BY id LIMIT ${limit}`,
    [after],
  );
  const last = rows[rows.length - 1];
  return { rows, position: last ? { after: String(last.id) } : position };
}

/** The position at the end of the trail now: a dispatcher that starts for the first time tells of what comes after. */
export async function auditEnd(manager: EntityManager): Promise<unknown> {
  const [row] = await manager.query<{ after: string }[]>(`SELECT coalesce(max(id), 0)::text AS after FROM audit_events`);
  return { after: row?.after ?? '0' };
}
