import { z } from 'zod';
import { ACCESS_MODES, SESSION_TYPES } from '@rcflow/domain';
import { cursor, cursorCodec, limit, uuid } from '../common/validation';
import { text } from '../sessions/sessions.schemas';

export const REVIEW_FORMATS = ['json', 'ndjson', 'csv'] as const;

export const deviceReviewQuery = z.strictObject({ format: z.enum(['json', 'csv']).optional() });

export const principalReviewQuery = z.strictObject({
  format: z.enum(REVIEW_FORMATS).optional(),
  limit,
  cursor: cursor.optional(),
});

export const checkQuery = z.strictObject({
  deviceId: uuid,
  principalId: uuid,
  type: z.enum(SESSION_TYPES),
  access: z.enum(ACCESS_MODES),
  reason: text(1000).optional(),
  ticketRef: text(200).optional(),
});
export type CheckQuery = z.infer<typeof checkQuery>;

/** A principal's review in id order: the id of the last device shown. */
export const deviceIdCursor = cursorCodec(z.tuple([uuid]));
