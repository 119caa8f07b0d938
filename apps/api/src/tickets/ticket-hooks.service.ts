import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { DataSource } from 'typeorm';
import { loadPrincipalFacts, rowsOf } from '@rcflow/database';
import { DomainError, NotFound, textProblem, type PrincipalFacts } from '@rcflow/domain';
import { SessionIntake, type SessionAsk } from '@rcflow/sessions';
import {
  SecretBox,
  deliveryKey,
  firstMatchingRule,
  mappingRuleSchema,
  verifyDelivery,
  type DeliveryHeaders,
  type InboundAuth,
  type MappingRule,
  type TicketKind,
} from '@rcflow/tickets';

export const TICKET_SECRET_BOX = Symbol('TICKET_SECRET_BOX');

/** What the sender is told; the same answer for every redelivery of one delivery. */
export interface HookAnswer {
  status: number;
  body: {
    deliveryId: string;
    outcome: DeliveryOutcome;
    sessionId: string | null;
    reason: string | null;
    duplicateOf?: string;
  };
}

export type DeliveryOutcome =
  | 'received'
  | 'signature_refused'
  | 'malformed'
  | 'duplicate'
  | 'unmatched'
  | 'device_not_found'
  | 'several_devices'
  | 'viewer_unknown'
  | 'refused'
  | 'session_requested';

export interface IntegrationRow {
  id: string;
  enabled: boolean;
  kind: TicketKind;
  principal_id: string;
  inbound_auth: InboundAuth;
  inbound_secrets_sealed: string;
  rules: unknown;
}

interface DeliveryLine {
  outcome: DeliveryOutcome;
  statusCode: number;
  reason?: string | null;
  rule?: string | null;
  ticketRef?: string | null;
  ticketApiId?: string | null;
  deviceId?: string | null;
  viewerId?: string | null;
  sessionId?: string | null;
}

const MAX_EVENT_TYPE = 200;

/**
 * The webhook intake of ticket triggers: checks the delivery's signature on the raw bytes,
 * deduplicates it, applies the integration's rules, resolves the device and the viewer, and asks
 * for the session through the one intake (same scope, idempotency and eligibility as the REST
 * path). Every delivery that names an integration leaves exactly one line in its delivery log.
 */
@Injectable()
export class TicketHooks {
  constructor(
    private readonly dataSource: DataSource,
    private readonly intake: SessionIntake,
    @Inject(TICKET_SECRET_BOX) private readonly box: SecretBox | null,
  ) {}

  async receive(integrationId: string, raw: Buffer, headers: DeliveryHeaders, nowMs = Date.now()): Promise<HookAnswer> {
    const integration = await this.integration(integrationId);
    if (!integration?.enabled || !this.box) throw new NotFound('ticket integration', integrationId);
    const secrets = JSON.parse(this.box.open(integration.inbound_secrets_sealed, integration.id)) as string[];

    const verdict = verifyDelivery(integration.kind, integration.inbound_auth, raw, headers, secrets, nowMs);
    const bodyKey = deliveryKey('generic', raw, {}, null);
    if (!verdict.ok)
      return this.logAlone(integration.id, bodyKey, verdict.reason, {
        outcome: 'signature_refused',
        statusCode: 401,
        reason: verdict.detail,
      });

    const body = parseJson(raw, headers);
    if (!body.ok)
      return this.logAlone(integration.id, bodyKey, 'ok', { outcome: 'malformed', statusCode: body.status, reason: body.reason });

    const key = deliveryKey(integration.kind, raw, headers, body.value);
    const eventType = eventTypeOf(integration.kind, headers, body.value);
    const [first] = rowsOf<{ id: string }>(
      await this.dataSource.query(
        `INSERT INTO ticket_deliveries (integration_id, delivery_key, key_source, first, event_type, signature, outcome, status_code)
         VALUES ($1, $2, $3, true, $4, 'ok', 'received', 202)
         ON CONFLICT (integration_id, delivery_key) WHERE first DO NOTHING RETURNING id`,
        [integration.id, key.key, key.source, eventType],
      ),
    );
    if (!first) return this.redelivery(integration.id, key, eventType);

    const line = await this.apply(integration, body.value, headers, key.key);
    await this.dataSource.query(
      `UPDATE ticket_deliveries SET outcome = $2, status_code = $3, reason = $4, rule = $5, ticket_ref = $6, device_id = $7, viewer_id = $8, session_id = $9,
              ticket_api_id = $10
        WHERE id = $1`,
      [
        first.id,
        line.outcome,
        line.statusCode,
        line.reason ?? null,
        line.rule ?? null,
        line.ticketRef ?? null,
        line.deviceId ?? null,
        line.viewerId ?? null,
        line.sessionId ?? null,
        line.ticketApiId ?? null,
      ],
    );
    return answer(first.id, line);
  }

  /** What the rules make of a verified delivery, up to and including the session request. */
  private async apply(integration: IntegrationRow, body: unknown, headers: DeliveryHeaders, key: string): Promise<DeliveryLine> {
    const resolved = await this.resolve(integration, body, headers);
    if (!('ask' in resolved)) return resolved;
    const { ask, caller, line } = resolved;
    try {
      const { session } = await this.intake.submit(caller, ask, idempotencyKeyOf(integration.id, key));
      return { ...line, sessionId: session.id, outcome: 'session_requested', reason: null };
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      return { ...line, outcome: 'refused', reason: err.message };
    }
  }

  /**
   * The integration's rules over a delivery, the device and viewer they name resolved: either a
   * final line for the delivery log (unmatched, not found, unknown…) or the session to ask for and
   * who asks. Reads only.
   */
  async resolve(
    integration: IntegrationRow,
    body: unknown,
    headers: DeliveryHeaders,
  ): Promise<DeliveryLine | { ask: SessionAsk & { viewerId: string }; caller: PrincipalFacts; line: DeliveryLine }> {
    const rules = mappingRuleSchema.array().safeParse(integration.rules);
    if (!rules.success)
      return {
        outcome: 'unmatched',
        statusCode: 202,
        reason: 'the integration’s rules are not valid; an administrator must save them again',
      };
    const outcome = firstMatchingRule(rules.data, { body, headers });
    if (!outcome.matched) return { outcome: 'unmatched', statusCode: 202, reason: outcome.reason };
    const rule = rules.data.find((r) => r.name === outcome.rule)!;
    const texts = [outcome.ticketRef, outcome.ticketApiId, outcome.reason, ...outcome.deviceNames, outcome.viewer?.externalId ?? ''];
    if (texts.some((t) => textProblem(t) !== null))
      return {
        outcome: 'unmatched',
        statusCode: 202,
        rule: rule.name,
        reason: 'the payload’s text holds characters rcflow cannot store (NUL or a lone surrogate)',
      };
    const base = { rule: rule.name, ticketRef: outcome.ticketRef, ticketApiId: outcome.ticketApiId, statusCode: 202 };

    const devices = await this.devicesNamed(outcome.deviceNames, outcome.matchBy);
    if (devices.length === 0)
      return { ...base, outcome: 'device_not_found', reason: `no device matches ${outcome.deviceNames.join(', ')} by ${outcome.matchBy}` };
    if (devices.length > 1 && rule.severalDevices === 'refuse')
      return { ...base, outcome: 'several_devices', reason: `several devices match: ${devices.map((d) => d.hostname).join(', ')}` };
    const device = devices[0] as { id: string; hostname: string };

    if (!outcome.viewer) return { ...base, deviceId: device.id, outcome: 'viewer_unknown', reason: `no assignee at ${rule.viewer.from}` };
    const viewerId = await this.principalWithIdentity(outcome.viewer.identity, outcome.viewer.externalId);
    if (!viewerId)
      return {
        ...base,
        deviceId: device.id,
        outcome: 'viewer_unknown',
        reason: `no principal has the ${outcome.viewer.identity} identity ${outcome.viewer.externalId}`,
      };

    const caller = await loadPrincipalFacts(this.dataSource.manager, integration.principal_id);
    if (!caller)
      return { ...base, deviceId: device.id, viewerId, outcome: 'refused', reason: 'the integration’s principal is disabled or gone' };
    return {
      ask: {
        deviceId: device.id,
        viewerId,
        type: outcome.type,
        access: outcome.access,
        reason: outcome.reason === '' ? undefined : outcome.reason,
        ticketRef: outcome.ticketRef,
        ticket: { integrationId: integration.id, apiId: outcome.ticketApiId },
      },
      caller,
      line: { ...base, deviceId: device.id, viewerId, outcome: 'received' },
    };
  }

  /** The integration (enabled or not) as the hook reads it. */
  async integration(id: string): Promise<IntegrationRow | null> {
    const [row] = await this.dataSource.query<IntegrationRow[]>(
      `SELECT id, kind, principal_id, inbound_auth, inbound_secrets_sealed, rules, enabled FROM ticket_integrations WHERE id = $1::uuid`,
      [id],
    );
    return row ?? null;
  }

  private async devicesNamed(names: string[], matchBy: MappingRule['device']['matchBy']): Promise<{ id: string; hostname: string }[]> {
    const byHost = matchBy !== 'externalId';
    const byExternal = matchBy !== 'hostname';
    return this.dataSource.query(
      `SELECT id, hostname FROM devices
        WHERE NOT retired AND (($3 AND lower(hostname) = ANY($1::text[])) OR ($4 AND external_id = ANY($2::text[])))
        ORDER BY lower(hostname) LIMIT 20`,
      [names.map((n) => n.toLowerCase()), names, byHost, byExternal],
    );
  }

  private async principalWithIdentity(system: string, externalId: string): Promise<string | null> {
    const id = system === 'email' ? externalId.toLowerCase() : externalId;
    const [row] = await this.dataSource.query<{ principal_id: string }[]>(
      `SELECT i.principal_id FROM principal_identities i JOIN principals p ON p.id = i.principal_id
        WHERE i.system = $1 AND i.external_id = $2 AND NOT p.disabled AND p.kind = 'user'`,
      [system, id],
    );
    return row?.principal_id ?? null;
  }

  /** A redelivery: logged as such, and answered as the first delivery of its key was. */
  private async redelivery(integrationId: string, key: { key: string; source: string }, eventType: string | null): Promise<HookAnswer> {
    const [line] = rowsOf<{
      id: string;
      first_id: string;
      outcome: DeliveryOutcome;
      status_code: number;
      reason: string | null;
      session_id: string | null;
    }>(
      await this.dataSource.query(
        `WITH f AS (SELECT id, outcome, status_code, reason, session_id FROM ticket_deliveries WHERE integration_id = $1 AND delivery_key = $2 AND first)
         INSERT INTO ticket_deliveries (integration_id, delivery_key, key_source, first, event_type, signature, outcome, status_code, session_id, reason)
         SELECT $1, $2, $3, false, $4, 'ok', 'duplicate', f.status_code, f.session_id, 'a redelivery of delivery ' || f.id
           FROM f
         RETURNING id, (SELECT id FROM f) AS first_id, (SELECT outcome FROM f) AS outcome, status_code, (SELECT reason FROM f) AS reason, session_id`,
        [integrationId, key.key, key.source, eventType],
      ),
    );
    if (!line) throw new Error('the first delivery of a key vanished');
    return {
      status: line.status_code,
      body: {
        deliveryId: line.first_id,
        outcome: line.outcome,
        sessionId: line.session_id,
        reason: line.reason,
        duplicateOf: line.first_id,
      },
    };
  }

  /** A delivery refused before its key could be trusted: one log line, keyed by its body's hash, never `first`. */
  private async logAlone(
    integrationId: string,
    key: { key: string; source: string },
    signature: string,
    line: DeliveryLine,
  ): Promise<HookAnswer> {
    const [row] = rowsOf<{ id: string }>(
      await this.dataSource.query(
        `INSERT INTO ticket_deliveries (integration_id, delivery_key, key_source, first, signature, outcome, status_code, reason)
         VALUES ($1, $2, $3, false, $4, $5, $6, $7) RETURNING id`,
        [integrationId, key.key, key.source, signature, line.outcome, line.statusCode, line.reason ?? null],
      ),
    );
    return answer(row?.id ?? '', line);
  }
}

function answer(deliveryId: string, line: DeliveryLine): HookAnswer {
  return {
    status: line.statusCode,
    body: { deliveryId, outcome: line.outcome, sessionId: line.sessionId ?? null, reason: line.reason ?? null },
  };
}

/** The intake's Idempotency-Key for a delivery: a redelivery that races the first gets its session. */
function idempotencyKeyOf(integrationId: string, key: string): string {
  return `ticket:${createHash('sha256').update(`${integrationId}\n${key}`).digest('base64url')}`;
}

function parseJson(raw: Buffer, headers: DeliveryHeaders): { ok: true; value: unknown } | { ok: false; status: number; reason: string } {
  const type = String(headers['content-type'] ?? '')
    .split(';')[0]
    ?.trim()
    .toLowerCase();
  if (type !== 'application/json')
    return { ok: false, status: 415, reason: `the body must be application/json, not ${type === '' ? 'unnamed' : type}` };
  try {
    return { ok: true, value: JSON.parse(raw.toString('utf8')) as unknown };
  } catch {
    return { ok: false, status: 400, reason: 'the body is not valid JSON' };
  }
}

/** The event's name for the delivery log (not used to decide anything; the rules read the payload). */
function eventTypeOf(kind: TicketKind, headers: DeliveryHeaders, body: unknown): string | null {
  const b = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const text = (v: unknown) => (typeof v === 'string' && v && textProblem(v) === null ? v.slice(0, MAX_EVENT_TYPE) : null);
  switch (kind) {
    case 'jira':
      return text(b.webhookEvent);
    case 'github': {
      const event = text(headers['x-github-event']);
      const action = text(b.action);
      return event && action ? `${event}.${action}` : event;
    }
    case 'zendesk':
      return text(b.type);
    case 'servicenow':
    case 'freshservice':
    case 'freshdesk':
    case 'generic':
      return text(headers['x-rcflow-event']) ?? text(b.event);
  }
}
