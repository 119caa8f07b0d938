import { z } from 'zod';
import { ACCESS_MODES, SESSION_TYPES } from '@rcflow/domain';
import { MAX_WINDOW_MINUTES, cronScheduleSchema, intervalScheduleSchema, scheduleSpecSchema, shortestGapMinutes } from '@rcflow/schedules';
import { documentAs } from '../common/api-docs';
import { CronExpressionParser } from 'cron-parser';
import { cursor, dateTime, limit, uuid } from '../common/validation';
import { MAX_REMIND_MINUTES, text } from '../sessions/sessions.schemas';

/** How long after each occurrence a start is still accepted, when the schedule does not say: 30 minutes, or less when occurrences fall closer. */
export const DEFAULT_WINDOW_MINUTES = 30;
/** Devices one schedule may list (a collection takes any number, see MAX_OCCURRENCE_DEVICES). */
export const MAX_SCHEDULE_DEVICES = 100;

/** The shortest time between two occurrences of a timing that is otherwise valid, or null when it cannot be read. */
function gapOf(t: Record<string, unknown>): number | null {
  if (typeof t.intervalMinutes === 'number') return t.intervalMinutes;
  if (typeof t.cron !== 'string') return null;
  try {
    const { minute, hour } = CronExpressionParser.parse(t.cron).fields;
    return shortestGapMinutes(minute.values, hour.values);
  } catch {
    return null; // the schema says what is wrong with it
  }
}

/**
 * A schedule's timing as the API takes it: scheduleSpecSchema (libs/schedules) with friendly
 * defaults — startsAt now, windowMinutes 30 (or the time between two occurrences when shorter),
 * missedPolicy skip.
 */
const defaulted = (shape: typeof cronScheduleSchema.shape | typeof intervalScheduleSchema.shape) => ({
  startsAt: shape.startsAt.optional(),
  windowMinutes: shape.windowMinutes.optional(),
  missedPolicy: shape.missedPolicy.optional(),
});
export const timingSchema = documentAs(
  z.preprocess((v) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
    const t = { ...(v as Record<string, unknown>) };
    t.startsAt ??= new Date(Math.floor(Date.now() / 1000) * 1000).toISOString();
    t.missedPolicy ??= 'skip';
    if (t.windowMinutes === undefined) {
      const gap = gapOf(t);
      t.windowMinutes = Math.max(1, Math.min(DEFAULT_WINDOW_MINUTES, MAX_WINDOW_MINUTES, gap ?? DEFAULT_WINDOW_MINUTES));
    }
    return t;
  }, scheduleSpecSchema),
  // As the caller sends it: the fields the preprocess fills are optional.
  z.union([cronScheduleSchema, intervalScheduleSchema].map((s) => z.strictObject({ ...s.shape, ...defaulted(s.shape) }))),
);

const definition = {
  name: text(200),
  /** When: a cron expression on a time zone's clock, or a fixed interval (see libs/schedules). */
  timing: timingSchema,
  /** The devices each occurrence asks for (or `collectionId`). */
  deviceIds: z
    .array(uuid)
    .min(1)
    .max(MAX_SCHEDULE_DEVICES)
    .refine((ids) => new Set(ids).size === ids.length, 'must not repeat a device'),
  /** The collection whose members at each occurrence are asked for (or `deviceIds`). */
  collectionId: uuid,
  /** The viewer when it is not the owner (needs session.request_on_behalf). */
  viewerId: uuid,
  type: z.enum(SESSION_TYPES),
  access: z.enum(ACCESS_MODES),
  reason: text(1000),
  ticketRef: text(200),
  /** Remind the user at each device this many minutes before each occurrence. */
  remindMinutes: z.int().min(1).max(MAX_REMIND_MINUTES),
  /** With the reminder, ask the user to agree ahead (where the device's settings would prompt). */
  askApproval: z.boolean(),
};

const askNeedsReminder = (b: { remindMinutes?: unknown; askApproval?: unknown }, ctx: z.RefinementCtx) => {
  if (b.askApproval === true && (b.remindMinutes === undefined || b.remindMinutes === null))
    ctx.addIssue({ code: 'custom', path: ['askApproval'], message: 'needs remindMinutes (the user is asked with the reminder)' });
};

const oneTarget = (b: { deviceIds?: unknown; collectionId?: unknown }, ctx: z.RefinementCtx, required: boolean) => {
  if (b.deviceIds !== undefined && b.collectionId !== undefined)
    ctx.addIssue({ code: 'custom', path: ['collectionId'], message: 'give deviceIds or collectionId, not both' });
  else if (required && b.deviceIds === undefined && b.collectionId === undefined)
    ctx.addIssue({ code: 'custom', path: ['deviceIds'], message: 'is required: the devices (or give collectionId)' });
};

export const createScheduleSchema = z
  .strictObject({
    name: definition.name,
    timing: definition.timing,
    deviceIds: definition.deviceIds.optional(),
    collectionId: definition.collectionId.optional(),
    viewerId: definition.viewerId.optional(),
    type: definition.type,
    access: definition.access,
    reason: definition.reason.optional(),
    ticketRef: definition.ticketRef.optional(),
    remindMinutes: definition.remindMinutes.optional(),
    askApproval: definition.askApproval.optional(),
  })
  .superRefine((b, ctx) => {
    oneTarget(b, ctx, true);
    askNeedsReminder(b, ctx);
  });
export type CreateScheduleBody = z.infer<typeof createScheduleSchema>;

/** Every field may change; `null` clears an optional one. A new timing replaces the old one whole. */
export const updateScheduleSchema = z
  .strictObject({
    name: definition.name.optional(),
    timing: definition.timing.optional(),
    deviceIds: definition.deviceIds.optional(),
    collectionId: definition.collectionId.optional(),
    viewerId: definition.viewerId.nullable().optional(),
    type: definition.type.optional(),
    access: definition.access.optional(),
    reason: definition.reason.nullable().optional(),
    ticketRef: definition.ticketRef.nullable().optional(),
    remindMinutes: definition.remindMinutes.nullable().optional(),
    askApproval: definition.askApproval.optional(),
  })
  .superRefine((b, ctx) => {
    oneTarget(b, ctx, false);
    if (Object.keys(b).length === 0) ctx.addIssue({ code: 'custom', message: 'names no field to change' });
  });
export type UpdateScheduleBody = z.infer<typeof updateScheduleSchema>;

export const SCHEDULE_STATES = ['active', 'paused', 'ended', 'deleted'] as const;

export const listSchedulesQuery = z.strictObject({
  state: z.enum(SCHEDULE_STATES).optional(),
  limit,
  cursor: cursor.optional(),
});

export const previewQuery = z.strictObject({ count: z.coerce.number().int().min(1).max(100).default(5) });

export const runsQuery = z.strictObject({
  limit,
  /** Occurrences before this time (the `at` of the last one of the previous page). */
  before: dateTime.optional(),
});
