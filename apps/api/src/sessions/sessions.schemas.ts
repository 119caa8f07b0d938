import { z } from 'zod';
import { ACCESS_MODES, SESSION_STATES, SESSION_TYPES } from '@rcflow/domain';
import { cursor, dateTime, limit, uuid } from '../common/validation';

/** Free text PostgreSQL can store: it refuses NUL in text, and a refused row would fail its statement (shared by every request body). */
// eslint-disable-next-line no-control-regex -- NUL is exactly what this refuses
const NO_NUL = /^[^\u0000]*$/;
export const text = (max: number) => z.string().trim().min(1).max(max).regex(NO_NUL, 'must not contain NUL characters');

/** How far ahead a session may be booked. */
export const MAX_BOOKING_AHEAD_MS = 366 * 86_400_000;
/** How far in the past a booking's start may be (clock skew between caller and rcflow). */
const BOOKING_SKEW_MS = 60_000;
/** The longest reminder ahead of a booking: a week. */
export const MAX_REMIND_MINUTES = 10_080;

/** What a caller may send to request a session; state, approver and consent are never settable. */
export const sessionRequestSchema = z
  .strictObject({
    deviceId: uuid,
    viewerId: uuid.optional(),
    type: z.enum(SESSION_TYPES),
    access: z.enum(ACCESS_MODES),
    reason: text(1000).optional(),
    ticketRef: text(200).optional(),
    /** Book the session ahead: it is stored `scheduled` and starts its lifecycle (checks included) at this time. */
    notBefore: dateTime.optional(),
    /** The latest start of a booked session; not started by then, it ends `expired`. */
    notAfter: dateTime.optional(),
    /** Remind the user at the device this many minutes before notBefore (a booking only). */
    remindMinutes: z.int().min(1).max(MAX_REMIND_MINUTES).optional(),
    /** With the reminder, ask the user to agree ahead (where the device's settings would prompt). */
    askApproval: z.boolean().optional(),
  })
  .superRefine((b, ctx) => {
    const now = Date.now();
    const nb = b.notBefore ? Date.parse(b.notBefore) : null;
    if (nb !== null && nb < now - BOOKING_SKEW_MS) ctx.addIssue({ code: 'custom', path: ['notBefore'], message: 'is in the past' });
    if (nb !== null && nb > now + MAX_BOOKING_AHEAD_MS)
      ctx.addIssue({ code: 'custom', path: ['notBefore'], message: 'is more than a year ahead' });
    if (b.notAfter && nb === null) ctx.addIssue({ code: 'custom', path: ['notAfter'], message: 'needs notBefore (the booked start)' });
    if (b.notAfter && nb !== null && Date.parse(b.notAfter) <= nb)
      ctx.addIssue({ code: 'custom', path: ['notAfter'], message: 'must be after notBefore' });
    if (b.remindMinutes !== undefined && nb === null)
      ctx.addIssue({ code: 'custom', path: ['remindMinutes'], message: 'needs notBefore (a reminder is for a booked session)' });
    if (b.askApproval !== undefined && b.remindMinutes === undefined)
      ctx.addIssue({ code: 'custom', path: ['askApproval'], message: 'needs remindMinutes (the user is asked with the reminder)' });
  })
  .transform(({ notBefore, notAfter, remindMinutes, askApproval, ...rest }) => ({
    ...rest,
    ...(notBefore && { notBefore: new Date(notBefore) }),
    ...(notAfter && { notAfter: new Date(notAfter) }),
    ...(remindMinutes !== undefined && { notice: { remindMinutes, askApproval: askApproval ?? false } }),
  }));
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
