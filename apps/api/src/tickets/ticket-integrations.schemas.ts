import { z } from 'zod';
import { TICKET_KINDS, IDENTITY_SYSTEMS, mappingRuleSchema } from '@rcflow/tickets';
import { cursor, limit, uuid } from '../common/validation';
import { body as strict, line } from '../admin/admin.schemas';

/** An inbound secret an administrator sets (Jira, GitHub: typed in both places; Zendesk: copied from Zendesk). */
const inboundSecret = z
  .string()
  .min(16, 'must be at least 16 characters')
  .max(256)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

/** Where and how notes are written back: the vendor's base URL and its credentials (never returned). */
const outbound = strict({
  url: z.url({ protocol: /^https?$/ }).max(2000),
  /** Jira: e-mail + API token; ServiceNow, Freshworks: user/API key + password; Zendesk: e-mail/token + token; GitHub: token; generic: signing secret. */
  credentials: z
    .record(z.string().regex(/^[a-zA-Z][a-zA-Z0-9_]{0,39}$/), z.string().min(1).max(4000))
    .refine((c) => Object.keys(c).length <= 8, 'at most 8 fields'),
});

export const createIntegrationSchema = strict({
  name: line(200),
  kind: z.enum(TICKET_KINDS),
  /** The service principal (holding role ticket_integration) whose sessions these are. */
  principalId: uuid,
  inboundAuth: z.enum(['hmac', 'token']).optional(),
  /** Omitted: rcflow generates one and returns it once. */
  inboundSecret: inboundSecret.optional(),
  outbound: outbound.nullable().optional(),
  /** Omitted: the vendor's defaults (see GET …/defaults). */
  rules: z.array(mappingRuleSchema).max(20).optional(),
  enabled: z.boolean().optional(),
});
export type CreateIntegrationInput = z.infer<typeof createIntegrationSchema>;

export const updateIntegrationSchema = strict({
  name: line(200).optional(),
  inboundAuth: z.enum(['hmac', 'token']).optional(),
  outbound: outbound.nullable().optional(),
  rules: z.array(mappingRuleSchema).max(20).optional(),
  enabled: z.boolean().optional(),
});
export type UpdateIntegrationInput = z.infer<typeof updateIntegrationSchema>;

export const rotateSecretSchema = strict({ inboundSecret: inboundSecret.optional() });

export const dryRunSchema = strict({
  /** The payload as the ticket system would send it. */
  body: z.unknown(),
  /** Headers the rules read (e.g. x-github-event); names are taken in lower case. */
  headers: z.record(z.string().max(100), z.string().max(2000)).optional(),
});

export const DELIVERY_OUTCOMES = [
  'received',
  'signature_refused',
  'malformed',
  'duplicate',
  'unmatched',
  'device_not_found',
  'several_devices',
  'viewer_unknown',
  'refused',
  'session_requested',
] as const;

export const listDeliveriesQuery = strict({
  outcome: z.enum(DELIVERY_OUTCOMES).optional(),
  sessionId: uuid.optional(),
  limit,
  cursor: cursor.optional(),
});

export const identitySchema = strict({
  system: z.enum(IDENTITY_SYSTEMS),
  externalId: line(320),
});

export const deviceExternalIdSchema = strict({ externalId: line(255).nullable() });

export const integrationPageQuery = strict({ limit, cursor: cursor.optional() });

export const WRITEBACK_STATES = ['pending', 'sent', 'dead', 'skipped'] as const;
export const writebackPageQuery = strict({
  state: z.enum(WRITEBACK_STATES).optional(),
  sessionId: uuid.optional(),
  limit,
  cursor: cursor.optional(),
});
export type WritebackPageQuery = z.infer<typeof writebackPageQuery>;
