import { createHash } from 'crypto';
import { canonicalJson } from './settings';
import type { AccessMode, SessionType } from './types';

/** A session request as its Idempotency-Key remembers it: every field, with the viewer resolved. */
export interface IdempotentSessionRequest {
  deviceId: string;
  /** The viewer the request is for: the one named, or the caller when none is. */
  viewerId: string;
  type: SessionType;
  access: AccessMode;
  reason?: string;
  ticketRef?: string;
  /** A booked session's earliest and latest start, as ISO instants. */
  notBefore?: string;
  notAfter?: string;
  /** A booking's reminder to the user at the device, and whether it asks for pre-approval. */
  notice?: { remindMinutes: number; askApproval: boolean };
}

/**
 * SHA-256 (hex) of the canonical JSON of every field of a session request. The same
 * Idempotency-Key replays the earlier answer only when this hash is the same; a request differing
 * in any field (device, viewer, type, access, reason, ticket reference, booked window) is a conflict, not a replay.
 * Key order does not matter; an absent optional field and one set to undefined hash alike.
 */
export function idempotencyRequestHash(body: IdempotentSessionRequest): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}
