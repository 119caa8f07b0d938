import { z } from 'zod';
import { ACCESS_MODES, SESSION_STATES, SESSION_TYPES } from '@rcflow/domain';
import { cursor, limit, uuid } from '../common/validation';

/** What a caller may send to request a session; state, approver and consent are never settable. */
export const sessionRequestSchema = z.strictObject({
  deviceId: uuid,
  viewerId: uuid.optional(),
  type: z.enum(SESSION_TYPES),
  access: z.enum(ACCESS_MODES),
  reason: z.string().trim().min(1).max(1000).optional(),
  ticketRef: z.string().trim().min(1).max(200).optional(),
});
export type SessionRequestBody = z.infer<typeof sessionRequestSchema>;

export const idempotencyKeySchema = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,200}$/, 'Idempotency-Key must be 1-200 characters of letters, digits, _ . : -');

export const listSessionsQuery = z.strictObject({
  state: z.enum(SESSION_STATES).optional(),
  deviceId: uuid.optional(),
  viewerId: uuid.optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  limit,
  cursor: cursor.optional(),
});

export const cancelSchema = z.strictObject({ reason: z.string().trim().min(1).max(1000).optional() });
