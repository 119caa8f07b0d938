import { z } from 'zod';
import { EVENT_TYPE_PATTERN } from '@rcflow/webhooks';
import { cursor, limit, uuid } from '../common/validation';
import { body as strict, line } from '../admin/admin.schemas';

const eventTypes = z
  .array(z.string().max(100).regex(EVENT_TYPE_PATTERN, 'must be an audit action (session.active), a prefix ending in .* (session.*), or *'))
  .min(1, 'name at least one event type')
  .max(50)
  .refine((types) => new Set(types).size === types.length, 'must not repeat an event type');

/** The scheme rule (https in production) is the service's, which knows the configuration. */
const url = z.string().trim().min(1).max(2000);

export const createWebhookSchema = strict({
  url,
  eventTypes,
  /** Only events about devices in this collection. */
  collectionId: uuid.nullable().optional(),
  enabled: z.boolean().optional(),
  description: line(500).nullable().optional(),
});
export type CreateWebhookInput = z.infer<typeof createWebhookSchema>;

export const updateWebhookSchema = strict({
  url: url.optional(),
  eventTypes: eventTypes.optional(),
  collectionId: uuid.nullable().optional(),
  enabled: z.boolean().optional(),
  description: line(500).nullable().optional(),
});
export type UpdateWebhookInput = z.infer<typeof updateWebhookSchema>;

export const DELIVERY_STATES = ['pending', 'delivered', 'failed', 'dead'] as const;

export const deliveriesQuery = strict({ status: z.enum(DELIVERY_STATES).optional(), limit, cursor: cursor.optional() });
export type DeliveriesQuery = z.infer<typeof deliveriesQuery>;

export const webhookPageQuery = strict({ limit, cursor: cursor.optional() });

export const deliveryParam = z.strictObject({ deliveryId: uuid });

/** How long the secret being replaced still signs deliveries (beside the new one): 0 ends it at once (a leaked secret). */
export const rotateSecretSchema = strict({
  previousValidSeconds: z
    .number()
    .int()
    .min(0)
    .max(7 * 86400)
    .optional(),
});
export type RotateSecretInput = z.infer<typeof rotateSecretSchema>;
