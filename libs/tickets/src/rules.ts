import { compile, search } from './jmespath';
import { z } from 'zod';
import { ACCESS_MODES, SESSION_TYPES, type AccessMode, type SessionType } from '@rcflow/domain';
import { IDENTITY_SYSTEMS, type IdentitySystem, type TicketKind } from './kinds';

/**
 * A JMESPath expression (https://jmespath.org) over the delivery: the parsed body, with the
 * request's headers (lower-case names) under `headers`, e.g. `headers."x-github-event"`.
 * JMESPath has no side effects and no code execution; it is checked when the rule is saved.
 */
export const expression = z
  .string()
  .trim()
  .min(1)
  .max(1000)
  .superRefine((expr, ctx) => {
    try {
      compile(expr);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `is not a JMESPath expression: ${(err as Error).message}` });
    }
  });

const pattern = z
  .string()
  .min(1)
  .max(300)
  .superRefine((source, ctx) => {
    try {
      const groups = new RegExp(`${source}|`).exec('')?.length ?? 1;
      if (groups < 2) ctx.addIssue({ code: 'custom', message: 'needs one capturing group: the device name' });
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `is not a regular expression: ${(err as Error).message}` });
    }
  });

/** `{{ expression }}` placeholders, each a JMESPath expression over the delivery. */
const template = z
  .string()
  .min(1)
  .max(1000)
  .superRefine((text, ctx) => {
    for (const m of text.matchAll(PLACEHOLDER)) {
      const inner = m[1] ?? '';
      try {
        compile(inner);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `placeholder {{${inner}}} is not a JMESPath expression: ${(err as Error).message}` });
      }
    }
  });
const PLACEHOLDER = /\{\{\s*(.+?)\s*\}\}/g;

/** One mapping rule: when a delivery asks for a session, and where the device and viewer come from. */
export const mappingRuleSchema = z.strictObject({
  name: z.string().trim().min(1).max(100),
  /** Truthy (JMESPath's sense: not null, false, "", [] or {}) when the delivery should start a session. */
  when: expression,
  /** The ticket's reference (Jira key, ServiceNow number…), recorded on the session and in its audit. */
  ticket: expression,
  /**
   * The id the ticket system's API takes to write the note, when it is not the reference
   * (ServiceNow's Table API takes the record's sys_id, not its number). Absent: the reference.
   */
  ticketApiId: expression.optional(),
  device: z.strictObject({
    /** The value (or list of values) naming the device. */
    from: expression,
    /** Applied to each value; its first capturing group is the device name (case-insensitive). */
    pattern: pattern.optional(),
    /** What the name is matched to: the device's host name, its external id (e.g. a CMDB sys_id), or either. */
    matchBy: z.enum(['hostname', 'externalId', 'either']),
  }),
  viewer: z.strictObject({
    /** The assignee's id in the ticket system (or e-mail address). */
    from: expression,
    /** Which of a principal's external identities it is matched to. */
    identity: z.enum(IDENTITY_SYSTEMS),
  }),
  session: z.strictObject({
    type: z.enum(SESSION_TYPES),
    access: z.enum(ACCESS_MODES),
    reason: template,
  }),
  /** Several devices match: refuse (recorded in the delivery log) or take the first in host-name order. */
  severalDevices: z.enum(['refuse', 'first']),
});
export type MappingRule = z.infer<typeof mappingRuleSchema>;

/** The delivery a rule reads: the parsed body and the request headers. */
export interface Delivery {
  body: unknown;
  headers: Readonly<Record<string, string | string[] | undefined>>;
}

export type RuleOutcome =
  | { matched: false; reason: string }
  | {
      matched: true;
      ticketRef: string;
      /** The id the vendor's API takes for the note (the reference unless the rule says otherwise). */
      ticketApiId: string;
      /** Candidate device names, in payload order, without duplicates. */
      deviceNames: string[];
      matchBy: MappingRule['device']['matchBy'];
      viewer: { identity: IdentitySystem; externalId: string } | null;
      type: SessionType;
      access: AccessMode;
      reason: string;
    };

/** JMESPath's truthiness. */
function truthy(value: unknown): boolean {
  if (value === null || value === undefined || value === false || value === '') return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return true;
}

function scalarText(value: unknown): string | null {
  if (typeof value === 'string') return value.trim() || null;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return null;
}

function evaluate(expr: string, delivery: Delivery): unknown {
  const data = typeof delivery.body === 'object' && delivery.body !== null && !Array.isArray(delivery.body) ? delivery.body : {};
  return search({ ...data, headers: delivery.headers }, expr);
}

/** Fills `{{ expression }}` placeholders; values that are not text or numbers render empty. */
export function renderTemplate(text: string, delivery: Delivery): string {
  return text.replace(PLACEHOLDER, (_, expr: string) => {
    try {
      return scalarText(evaluate(expr, delivery)) ?? '';
    } catch {
      return '';
    }
  });
}

const MAX_DEVICE_NAMES = 20;
const MAX_SCANNED_CHARS = 4096;

function deviceNames(rule: MappingRule, delivery: Delivery): string[] {
  const raw = evaluate(rule.device.from, delivery);
  // Bounded: the pattern runs on ticket text an outsider wrote.
  const values = (Array.isArray(raw) ? raw : [raw])
    .map(scalarText)
    .filter((v): v is string => v !== null)
    .map((v) => v.slice(0, MAX_SCANNED_CHARS));
  const regex = rule.device.pattern ? new RegExp(rule.device.pattern, 'i') : null;
  const names = values.map((v) => (regex ? (regex.exec(v)?.[1]?.trim() ?? null) : v)).filter((v): v is string => !!v && v.length <= 255);
  return [...new Set(names)].slice(0, MAX_DEVICE_NAMES);
}

/**
 * What a rule makes of a delivery, without touching anything: whether it triggers, and the names
 * it reads for the ticket, the device(s) and the viewer. Matching those names to a device and a
 * principal, and the eligibility checks, are the caller's. Never throws on a payload.
 */
export function applyRule(rule: MappingRule, delivery: Delivery): RuleOutcome {
  try {
    if (!truthy(evaluate(rule.when, delivery))) return { matched: false, reason: `rule "${rule.name}": its condition is not met` };
    const ticketRef = scalarText(evaluate(rule.ticket, delivery));
    if (!ticketRef) return { matched: false, reason: `rule "${rule.name}": no ticket reference at ${rule.ticket}` };
    const ticketApiId = rule.ticketApiId ? scalarText(evaluate(rule.ticketApiId, delivery)) : ticketRef;
    if (!ticketApiId) return { matched: false, reason: `rule "${rule.name}": no ticket API id at ${rule.ticketApiId}` };
    const names = deviceNames(rule, delivery);
    if (names.length === 0)
      return {
        matched: false,
        reason: `rule "${rule.name}": no device name at ${rule.device.from}${rule.device.pattern ? ` matching /${rule.device.pattern}/` : ''}`,
      };
    const viewerId = scalarText(evaluate(rule.viewer.from, delivery));
    return {
      matched: true,
      ticketRef: ticketRef.slice(0, 200),
      ticketApiId: ticketApiId.slice(0, 200),
      deviceNames: names,
      matchBy: rule.device.matchBy,
      viewer: viewerId ? { identity: rule.viewer.identity, externalId: viewerId.slice(0, 320) } : null,
      type: rule.session.type,
      access: rule.session.access,
      reason: renderTemplate(rule.session.reason, delivery).slice(0, 1000),
    };
  } catch (err) {
    // JMESPath raises on type errors at run time (e.g. a function given a number): unmatched, with why.
    return { matched: false, reason: `rule "${rule.name}": ${(err as Error).message}` };
  }
}

/** The first rule (in order) that triggers on a delivery, or why none did. */
export function firstMatchingRule(rules: readonly MappingRule[], delivery: Delivery): RuleOutcome & { rule: string | null } {
  const reasons: string[] = [];
  for (const rule of rules) {
    const outcome = applyRule(rule, delivery);
    if (outcome.matched) return { ...outcome, rule: rule.name };
    reasons.push(outcome.reason);
  }
  return { matched: false, reason: reasons.length ? reasons.join('; ') : 'the integration has no enabled rule', rule: null };
}

/** A device-name pattern: "device: WS-0042", "host=WS-0042", "computer WS-0042". */
const DEVICE_IN_TEXT = String.raw`\b(?:device|host|hostname|computer|pc)\s*[:=#]?\s*([A-Za-z0-9][A-Za-z0-9._-]{0,62})`;

/** Each vendor's defaults, filled into a new integration; the admin edits them to the installation's fields. */
export function defaultRules(kind: TicketKind): MappingRule[] {
  const session = (reason: string) => ({ type: 'remote-assistance' as const, access: 'full' as const, reason });
  switch (kind) {
    case 'jira':
      return [
        {
          name: 'Jira: assigned with label remote-help',
          when: "(webhookEvent == 'jira:issue_created' || length(changelog.items[?field == 'assignee'] || `[]`) > `0`) && contains(issue.fields.labels || `[]`, 'remote-help') && issue.fields.assignee != null",
          ticket: 'issue.key',
          device: {
            from: "join(' ', [issue.fields.summary || '', issue.fields.description || ''])",
            pattern: DEVICE_IN_TEXT,
            matchBy: 'hostname',
          },
          viewer: { from: 'issue.fields.assignee.accountId', identity: 'jira' },
          session: session('Jira {{issue.key}}: {{issue.fields.summary}}'),
          severalDevices: 'refuse',
        },
      ];
    case 'servicenow':
      return [
        {
          name: 'ServiceNow: assigned incident with a configuration item',
          when: "(assigned_to.value || assigned_to) != '' && (cmdb_ci.value || cmdb_ci) != ''",
          ticket: 'number.value || number',
          ticketApiId: 'sys_id.value || sys_id',
          device: { from: '[cmdb_ci.display_value, cmdb_ci.value, cmdb_ci][?type(@) == `string`] | [0]', matchBy: 'either' },
          viewer: { from: 'assigned_to.value || assigned_to', identity: 'servicenow' },
          session: session('ServiceNow {{number.value || number}}: {{short_description.value || short_description}}'),
          severalDevices: 'refuse',
        },
      ];
    case 'zendesk':
      return [
        {
          name: 'Zendesk: ticket tagged remote_help',
          when: "contains(detail.tags || `[]`, 'remote_help') && detail.assignee_id != null",
          ticket: 'detail.id',
          device: { from: "detail.tags[?starts_with(@, 'device_')]", pattern: '^device_(.+)$', matchBy: 'hostname' },
          viewer: { from: 'detail.assignee_id', identity: 'zendesk' },
          session: session('Zendesk #{{detail.id}}: {{detail.subject}}'),
          severalDevices: 'refuse',
        },
      ];
    case 'freshservice':
      return [
        {
          name: 'Freshservice: ticket with an asset and a responder',
          when: 'length(data.ticket.assets || `[]`) > `0` && data.ticket.responder_email != null',
          ticket: 'data.ticket.id',
          device: { from: 'data.ticket.assets[].asset_name', matchBy: 'either' },
          viewer: { from: 'data.ticket.responder_email', identity: 'email' },
          session: session('Freshservice #{{data.ticket.id}}: {{data.ticket.subject}}'),
          severalDevices: 'refuse',
        },
      ];
    case 'freshdesk':
      return [
        {
          name: 'Freshdesk: ticket naming a device, with an agent',
          when: 'freshdesk_webhook.ticket_id != null && freshdesk_webhook.ticket_agent_email != null',
          ticket: 'freshdesk_webhook.ticket_id',
          device: {
            from: "join(' ', [freshdesk_webhook.ticket_subject || '', freshdesk_webhook.ticket_description || ''])",
            pattern: DEVICE_IN_TEXT,
            matchBy: 'hostname',
          },
          viewer: { from: 'freshdesk_webhook.ticket_agent_email', identity: 'email' },
          session: session('Freshdesk #{{freshdesk_webhook.ticket_id}}: {{freshdesk_webhook.ticket_subject}}'),
          severalDevices: 'refuse',
        },
      ];
    case 'github':
      return [
        {
          name: 'GitHub: assigned issue labelled remote-help',
          when: "headers.\"x-github-event\" == 'issues' && contains(['opened', 'assigned', 'labeled'], action) && contains(issue.labels[].name || `[]`, 'remote-help') && issue.assignee != null",
          ticket: "join('#', [repository.full_name, to_string(issue.number)])",
          device: { from: "join(' ', [issue.title || '', issue.body || ''])", pattern: DEVICE_IN_TEXT, matchBy: 'hostname' },
          viewer: { from: 'issue.assignee.login', identity: 'github' },
          session: session('GitHub {{repository.full_name}}#{{issue.number}}: {{issue.title}}'),
          severalDevices: 'refuse',
        },
      ];
    case 'generic':
      return [
        {
          name: 'Generic: ticket, device and viewer named in the body',
          when: 'ticket != null && device != null',
          ticket: 'ticket',
          device: { from: 'device', matchBy: 'either' },
          viewer: { from: 'viewer', identity: 'email' },
          session: session('Ticket {{ticket}}'),
          severalDevices: 'refuse',
        },
      ];
  }
}
