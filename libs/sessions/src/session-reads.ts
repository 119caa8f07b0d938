// Hot path: raw SQL, one prepared statement per read (BENCHMARKS.md: the worker reads each session once per job).
import type { EntityManager } from 'typeorm';
import { sessionStreamSql } from '@rcflow/audit';
import { queryPrepared } from '@rcflow/database';
import type { ConsentRule, SessionState } from '@rcflow/domain';

/** A session as the workflow reads it: with its device's name and applied settings, the viewer's name and its audit head. */
export interface WorkflowSessionRow {
  id: string;
  state: SessionState;
  version: number;
  device_id: string;
  viewer_id: string;
  requester_id: string;
  type: 'remote-control' | 'remote-assistance' | 'remote-desktop';
  access: 'view' | 'full';
  reason: string | null;
  ticket_ref: string | null;
  consent_rule: ConsentRule | null;
  /** A booked session's earliest and latest start. */
  not_before: Date | null;
  not_after: Date | null;
  /** The schedule and occurrence that asked for it (null for a booking or an immediate request). */
  schedule_id: string | null;
  occurrence_at: Date | null;
  hostname: string;
  viewer_name: string;
  applied_settings_hash: string | null;
  /** The session stream's audit head, read in the same snapshot as version. */
  head_seq: number | null;
  head_hash: string | null;
}

/** A session with what the workflow needs of its device and viewer, and its audit head in the same snapshot. */
const LOAD_SQL = `SELECT s.id, s.state, s.version, s.device_id, s.viewer_id, s.requester_id, s.type, s.access, s.reason,
              s.ticket_ref, s.consent_rule, s.not_before, s.not_after, s.schedule_id, s.occurrence_at, d.hostname, d.applied_settings_hash, p.name AS viewer_name,
              h.seq AS head_seq, h.hash AS head_hash
         FROM sessions s LEFT JOIN devices d ON d.id = s.device_id LEFT JOIN principals p ON p.id = s.viewer_id
         LEFT JOIN audit_stream_heads h ON h.stream = ${sessionStreamSql('s.id')}
        WHERE s.id = $1`;

/** The session the workflow carries, read in one snapshot with its audit head; null when there is none. */
export async function loadWorkflowSession(manager: EntityManager, id: string): Promise<WorkflowSessionRow | null> {
  const rows = await queryPrepared<WorkflowSessionRow>(manager, LOAD_SQL, [id]);
  return rows[0] ?? null;
}

const DEVICE_OF_SQL = 'SELECT s.id, s.device_id, d.hostname FROM sessions s JOIN devices d ON d.id = s.device_id WHERE s.id = $1';

/** A session's device, as a command to its agent needs it; null when there is no such session. */
export async function loadSessionDevice(
  manager: EntityManager,
  id: string,
): Promise<{ id: string; device_id: string; hostname: string } | null> {
  const rows = await queryPrepared<{ id: string; device_id: string; hostname: string }>(manager, DEVICE_OF_SQL, [id]);
  return rows[0] ?? null;
}
