import { createHmac } from 'node:crypto';
import { canonicalJson } from '@rcflow/domain';

/** The prev_hash of the first event of every stream. */
export const GENESIS_HASH = '0'.repeat(64);

export type ActorKind = 'principal' | 'system' | 'agent';

/** What a caller records; stream, seq and hashes are assigned on append. */
export interface AuditEntry {
  stream: string;
  actorId: string | null;
  actorKind: ActorKind;
  action: string;
  outcome: string;
  sessionId?: string | null;
  deviceId?: string | null;
  viewerId?: string | null;
  ticketRef?: string | null;
  reason?: string | null;
  data?: Record<string, unknown>;
}

/** An event as stored, with everything the hash covers. */
export interface ChainedEvent {
  stream: string;
  seq: number;
  occurredAt: Date;
  actorId: string | null;
  actorKind: ActorKind;
  action: string;
  outcome: string;
  sessionId: string | null;
  deviceId: string | null;
  viewerId: string | null;
  ticketRef: string | null;
  reason: string | null;
  data: Record<string, unknown>;
  prevHash: string;
}

/**
 * HMAC-SHA256 over the previous hash and every stored field. Keyed so that someone who can write
 * the database but does not hold the key cannot forge a consistent chain.
 */
export function eventHash(key: string, event: ChainedEvent): string {
  const body = canonicalJson([
    event.prevHash,
    event.stream,
    event.seq,
    event.occurredAt.toISOString(),
    event.actorId,
    event.actorKind,
    event.action,
    event.outcome,
    event.sessionId,
    event.deviceId,
    event.viewerId,
    event.ticketRef,
    event.reason,
    event.data,
  ]);
  return createHmac('sha256', key).update(body).digest('hex');
}

/** The stream a session's events are chained in. */
export const sessionStream = (sessionId: string): string => `session:${sessionId}`;

/** `sessionStream` as a SQL expression over a column holding the session id. */
export const sessionStreamSql = (idColumn: string): string => `'session:' || ${idColumn}`;

/**
 * The audit stream of what the user at a device was told ahead of a session and answered (delivery,
 * pre-approval granted, denied, revoked): its own, because a session's stream is written only by its
 * transitions, whose head is version-fenced.
 */
export const noticeStream = (noticeId: string): string => `notice:${noticeId}`;
