import { z } from 'zod';
import { ACCESS_MODES, SESSION_STATES, SESSION_TYPES } from '@rcflow/domain';
import { cursor, dateTime, limit, uuid } from '../common/validation';

/** Free text PostgreSQL can store: it refuses NUL in text, and a refused row would fail its statement. */
// eslint-disable-next-line no-control-regex -- NUL is exactly what this refuses
const NO_NUL = /^[^\u0000]*$/;
const text = (max: number) => z.string().trim().min(1).max(max).regex(NO_NUL, 'must not contain NUL characters');

/** What a caller may send to request a session; state, approver and consent are never settable. */
export const sessionRequestSchema = z.strictObject({
  deviceId: uuid,
  viewerId: uuid.optional(),
  type: z.enum(SESSION_TYPES),
  access: z.enum(ACCESS_MODES),
  reason: text(1000).optional(),
  ticketRef: text(200).optional(),
});
export type SessionRequestBody = z.infer<typeof sessionRequestSchema>;

export const idempotencyKeySchema = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,200}$/, 'Idempotency-Key must be 1-200 characters of letters, digits, _ . : -');

export const listSessionsQuery = z.strictObject({
  state: z.enum(SESSION_STATES).optional(),
  deviceId: uuid.optional(),
  viewerId: uuid.optional(),
  from: dateTime.optional(),
  to: dateTime.optional(),
  limit,
  cursor: cursor.optional(),
});

export const cancelSchema = z.strictObject({ reason: text(1000).optional() });
