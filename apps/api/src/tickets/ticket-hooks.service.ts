import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { DataSource } from 'typeorm';
import { StatementBatcher, loadPrincipalFacts, queryPrepared } from '@rcflow/database';
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
  type RuleOutcome,
  type TicketKind,
} from '@rcflow/tickets';
import { TtlLru } from './ticket-hook-cache';

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
  /** The row's version (PostgreSQL's xmin): every change to the row changes it. */
  version: string;
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

/** An integration as the hook uses it: its secrets opened, its rules validated once (null: not valid). */
interface OpenIntegration {
  row: IntegrationRow;
  secrets: string[];
  rules: MappingRule[] | null;
}

type Matched = Extract<RuleOutcome, { matched: true }>;

/** What the rules make of a delivery before anything is read: a final line, or what to look up. */
type Judged = { line: DeliveryLine } | { outcome: Matched; rule: MappingRule; base: DeliveryLine };

/** What the hook reads for a verified delivery (see LOOKUP_SQL). */
interface Lookup {
  /** The integration row is still the version held, and enabled (checked only for a cached one). */
  current: boolean;
  principalEnabled: boolean;
  /** The first delivery of the key, when this one is a redelivery. */
  firstId: string | null;
  devices: { id: string; hostname: string }[];
  viewerId: string | null;
}

const MAX_EVENT_TYPE = 200;

/**
 * How long one process reuses an integration (secrets opened, rules validated) and its
 * principal's facts. Each delivery's lookup (LOOKUP_SQL) also checks that the integration row is
 * unchanged and enabled and that its principal is enabled, so disabling an integration, rotating
 * or dropping a secret, changing the rules or disabling the principal take effect with the next
 * delivery; only the principal's grants and groups may be this old.
 */
const HOOK_CACHE_MS = 2000;
/**
 * At most this many integrations (and principals) are kept per process, least recently used out
 * first. An integration is kept only after a delivery's signature verified against it; unknown
 * and disabled ones are never kept, so bad deliveries cannot churn the cache.
 */
const HOOK_CACHE_SIZE = 256;

const INTEGRATION_SQL = `SELECT id, kind, principal_id, inbound_auth, inbound_secrets_sealed, rules, enabled, xmin::text AS version
  FROM ticket_integrations WHERE id = $1::uuid`;

/**
 * The webhook intake of ticket triggers: checks the delivery's signature on the raw bytes,
 * deduplicates it, applies the integration's rules, resolves the device and the viewer, and asks
 * for the session through the one intake (same scope, idempotency and eligibility as the REST
 * path). Every delivery that names an integration leaves exactly one line in its delivery log.
 *
 * A new delivery costs one read (its lookup: dedupe, device, viewer, and whether what is cached
 * still holds) and the intake, each shared with concurrent deliveries (one statement for many),
 * and one insert of its line (batching those did not pay: BENCHMARKS.md 3b). Concurrent deliveries of one key all get past the read; the intake's
 * idempotency key gives them one session, and the unique index on first lines lets one line be
 * `first`: the others, on conflict, are logged and answered as redeliveries of it, with its
 * answer. A process that dies between the intake and the line leaves a session without a line;
 * the vendor's redelivery then finds the session by its idempotency key and writes the line.
 */
@Injectable()
export class TicketHooks {
  private readonly integrations = new TtlLru<string, OpenIntegration>(HOOK_CACHE_MS, HOOK_CACHE_SIZE);
  private readonly principals = new TtlLru<string, PrincipalFacts | null>(HOOK_CACHE_MS, HOOK_CACHE_SIZE);
  private readonly reading = new Map<string, Promise<IntegrationRow | null>>();
  /** Concurrent deliveries' lookups go to PostgreSQL together. */
  private readonly lookups: StatementBatcher<LookupAsk, Lookup>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly intake: SessionIntake,
    @Inject(TICKET_SECRET_BOX) private readonly box: SecretBox | null,
  ) {
    this.lookups = new StatementBatcher(
      (asks) => lookUp(this.dataSource, asks),
      LOOKUPS_IN_FLIGHT,
      MAX_BATCH,
      (a) => `the delivery to ${a.integrationId}`,
    );
  }

  async receive(integrationId: string, raw: Buffer, headers: DeliveryHeaders, nowMs = Date.now()): Promise<HookAnswer> {
    const cached = this.integrations.get(integrationId);
    if (cached) {
      const answer = await this.receiveWith(cached, true, raw, headers, nowMs);
      if (answer) return answer;
      this.integrations.delete(integrationId); // changed since it was read: read it again
    }
    const row = await this.read(integrationId);
    if (!row?.enabled || !this.box) throw new NotFound('ticket integration', integrationId);
    return (await this.receiveWith(this.open(row, this.box), false, raw, headers, nowMs))!;
  }

  /**
   * One delivery against an integration; null (nothing written) when `cached` and the row has
   * changed or been disabled since, so that the caller reads it again.
   */
  private async receiveWith(
    integration: OpenIntegration,
    cached: boolean,
    raw: Buffer,
    headers: DeliveryHeaders,
    nowMs: number,
  ): Promise<HookAnswer | null> {
    const { row } = integration;
    const verdict = verifyDelivery(row.kind, row.inbound_auth, raw, headers, integration.secrets, nowMs);
    const bodyKey = deliveryKey('generic', raw, {}, null);
    const version = cached ? row.version : null;
    if (!verdict.ok)
      return this.logAlone(row.id, version, bodyKey, verdict.reason, {
        outcome: 'signature_refused',
        statusCode: 401,
        reason: verdict.detail,
      });
    if (!cached) this.integrations.set(row.id, integration);

    const body = parseJson(raw, headers);
    if (!body.ok)
      return this.logAlone(row.id, version, bodyKey, 'ok', { outcome: 'malformed', statusCode: body.status, reason: body.reason });

    const key = deliveryKey(row.kind, raw, headers, body.value);
    const eventType = eventTypeOf(row.kind, headers, body.value);
    const judged = judge(integration.rules, body.value, headers);
    const found = await this.lookups.submit(lookupAsk(row, key.key, 'line' in judged ? null : judged.outcome));
    if (cached && !found.current) return null;
    if (found.firstId) return this.redelivery(row.id, key, eventType);

    let line = 'line' in judged ? judged.line : this.settle(judged, found);
    if (line.outcome === 'received') {
      const caller = await this.callerOf(row.principal_id, found.principalEnabled);
      line = await this.submit(row.id, key.key, judged as Exclude<Judged, { line: DeliveryLine }>, line, caller);
    }
    const [first] = await queryPrepared<{ id: string }>(this.dataSource.manager, FIRST_LINE_SQL, [
      row.id,
      key.key,
      key.source,
      eventType,
      line.outcome,
      line.statusCode,
      line.reason ?? null,
      line.rule ?? null,
      line.ticketRef ?? null,
      line.deviceId ?? null,
      line.viewerId ?? null,
      line.sessionId ?? null,
      line.ticketApiId ?? null,
    ]);
    // A concurrent delivery of the same key logged its line first (and, through the intake's
    // idempotency key, has the same session): this one is its redelivery.
    if (!first) return this.redelivery(row.id, key, eventType);
    return answer(first.id, line);
  }

  /** The session for a delivery that got through its rules, device, viewer and principal. */
  private async submit(
    integrationId: string,
    key: string,
    judged: Exclude<Judged, { line: DeliveryLine }>,
    line: DeliveryLine,
    caller: PrincipalFacts | null,
  ): Promise<DeliveryLine> {
    if (!caller || caller.disabled) return { ...line, outcome: 'refused', reason: 'the integration’s principal is disabled or gone' };
    try {
      const { session } = await this.intake.submit(
        caller,
        askOf(integrationId, judged.outcome, line),
        idempotencyKeyOf(integrationId, key),
      );
      return { ...line, sessionId: session.id, outcome: 'session_requested', reason: null };
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      return { ...line, outcome: 'refused', reason: err.message };
    }
  }

  /** The device and viewer found for a matched delivery: a final line, or `received` with both. */
  private settle({ outcome, rule, base }: Exclude<Judged, { line: DeliveryLine }>, found: Lookup): DeliveryLine {
    const { devices } = found;
    if (devices.length === 0)
      return { ...base, outcome: 'device_not_found', reason: `no device matches ${outcome.deviceNames.join(', ')} by ${outcome.matchBy}` };
    if (devices.length > 1 && rule.severalDevices === 'refuse')
      return { ...base, outcome: 'several_devices', reason: `several devices match: ${devices.map((d) => d.hostname).join(', ')}` };
    const device = devices[0]!;
    if (!outcome.viewer) return { ...base, deviceId: device.id, outcome: 'viewer_unknown', reason: `no assignee at ${rule.viewer.from}` };
    if (!found.viewerId)
      return {
        ...base,
        deviceId: device.id,
        outcome: 'viewer_unknown',
        reason: `no principal has the ${outcome.viewer.identity} identity ${outcome.viewer.externalId}`,
      };
    if (!found.principalEnabled)
      return {
        ...base,
        deviceId: device.id,
        viewerId: found.viewerId,
        outcome: 'refused',
        reason: 'the integration’s principal is disabled or gone',
      };
    return { ...base, deviceId: device.id, viewerId: found.viewerId, outcome: 'received' };
  }

  /** The integration principal's facts, reused for HOOK_CACHE_MS unless the lookup just saw otherwise. */
  private async callerOf(principalId: string, enabled: boolean): Promise<PrincipalFacts | null> {
    const load = () => loadPrincipalFacts(this.dataSource.manager, principalId);
    const facts = await this.principals.getOrLoad(principalId, load);
    if (facts && !facts.disabled === enabled) return facts;
    this.principals.delete(principalId); // enabled or disabled since: read again
    return this.principals.getOrLoad(principalId, load);
  }

  /**
   * The integration's rules over a delivery, the device and viewer they name resolved: either a
   * final line for the delivery log (unmatched, not found, unknown…) or the session to ask for and
   * who asks. Reads only, and nothing cached (the dry run).
   */
  async resolve(
    integration: IntegrationRow,
    body: unknown,
    headers: DeliveryHeaders,
  ): Promise<DeliveryLine | { ask: SessionAsk & { viewerId: string }; caller: PrincipalFacts; line: DeliveryLine }> {
    const judged = judge(validRules(integration.rules), body, headers);
    if ('line' in judged) return judged.line;
    const line = this.settle(judged, await this.lookups.submit(lookupAsk(integration, null, judged.outcome)));
    if (line.outcome !== 'received') return line;
    const caller = await loadPrincipalFacts(this.dataSource.manager, integration.principal_id);
    if (!caller || caller.disabled) return { ...line, outcome: 'refused', reason: 'the integration’s principal is disabled or gone' };
    return { ask: askOf(integration.id, judged.outcome, line), caller, line };
  }

  /**
   * The integration row, one read at a time per id: deliveries that find it uncached together (its
   * time up, or a flood of bad signatures, which never fill the cache) share one read.
   */
  private read(id: string): Promise<IntegrationRow | null> {
    let pending = this.reading.get(id);
    if (!pending) {
      pending = this.integration(id).finally(() => this.reading.delete(id));
      this.reading.set(id, pending);
    }
    return pending;
  }

  /** The integration (enabled or not) as the hook reads it. */
  async integration(id: string): Promise<IntegrationRow | null> {
    const [row] = await queryPrepared<IntegrationRow>(this.dataSource.manager, INTEGRATION_SQL, [id]);
    return row ?? null;
  }

  private open(row: IntegrationRow, box: SecretBox): OpenIntegration {
    return { row, secrets: JSON.parse(box.open(row.inbound_secrets_sealed, row.id)) as string[], rules: validRules(row.rules) };
  }

  /** A redelivery: logged as such, and answered as the first delivery of its key was. */
  private async redelivery(integrationId: string, key: { key: string; source: string }, eventType: string | null): Promise<HookAnswer> {
    const [line] = await queryPrepared<{
      id: string;
      first_id: string;
      outcome: DeliveryOutcome;
      status_code: number;
      reason: string | null;
      session_id: string | null;
    }>(this.dataSource.manager, REDELIVERY_SQL, [integrationId, key.key, key.source, eventType]);
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

  /**
   * A delivery refused before its key could be trusted: one log line, keyed by its body's hash,
   * never `first`. With `version` (a cached integration), written only while the row is still that
   * version and enabled; null otherwise, and nothing written.
   */
  private async logAlone(
    integrationId: string,
    version: string | null,
    key: { key: string; source: string },
    signature: string,
    line: DeliveryLine,
  ): Promise<HookAnswer | null> {
    const [row] = await queryPrepared<{ id: string }>(this.dataSource.manager, LOG_ALONE_SQL, [
      integrationId,
      key.key,
      key.source,
      signature,
      line.outcome,
      line.statusCode,
      line.reason ?? null,
      version,
    ]);
    if (!row) {
      if (version !== null) return null;
      throw new Error('a refused delivery’s log line was not written');
    }
    return answer(row.id, line);
  }
}

const FIRST_LINE_SQL = `INSERT INTO ticket_deliveries (integration_id, delivery_key, key_source, first, event_type, signature, outcome, status_code,
    reason, rule, ticket_ref, device_id, viewer_id, session_id, ticket_api_id)
  VALUES ($1::uuid, $2::text, $3::text, true, $4::text, 'ok', $5::text, $6::integer, $7::text, $8::text, $9::text, $10::uuid, $11::uuid, $12::uuid, $13::text)
  ON CONFLICT (integration_id, delivery_key) WHERE first DO NOTHING RETURNING id::text AS id`;

const REDELIVERY_SQL = `WITH f AS (SELECT id, outcome, status_code, reason, session_id FROM ticket_deliveries
    WHERE integration_id = $1::uuid AND delivery_key = $2::text AND first)
  INSERT INTO ticket_deliveries (integration_id, delivery_key, key_source, first, event_type, signature, outcome, status_code, session_id, reason)
  SELECT $1::uuid, $2::text, $3::text, false, $4::text, 'ok', 'duplicate', f.status_code, f.session_id, 'a redelivery of delivery ' || f.id
    FROM f
  RETURNING id::text AS id, (SELECT id::text FROM f) AS first_id, (SELECT outcome FROM f) AS outcome, status_code, (SELECT reason FROM f) AS reason, session_id`;

const LOG_ALONE_SQL = `INSERT INTO ticket_deliveries (integration_id, delivery_key, key_source, first, signature, outcome, status_code, reason)
  SELECT $1::uuid, $2::text, $3::text, false, $4::text, $5::text, $6::integer, $7::text
   WHERE $8::text IS NULL OR EXISTS (SELECT 1 FROM ticket_integrations i WHERE i.id = $1::uuid AND i.enabled AND i.xmin::text = $8::text)
  RETURNING id::text AS id`;

/** Lookup statements out at once, at most (the pool also serves intake, the relay and reads). */
const LOOKUPS_IN_FLIGHT = 3;
/** Requests per statement, at most. */
const MAX_BATCH = 100;

/** One delivery's lookup (see LOOKUP_SQL). */
interface LookupAsk {
  integrationId: string;
  version: string;
  principalId: string;
  key: string | null;
  /** Lower-case names to match to host names; names to match to external ids. */
  hostnames: string[];
  externalIds: string[];
  system: string | null;
  externalId: string | null;
}

function lookupAsk(row: IntegrationRow, key: string | null, outcome: Matched | null): LookupAsk {
  const names = outcome?.deviceNames ?? [];
  const viewer = outcome?.viewer ?? null;
  return {
    integrationId: row.id,
    version: row.version,
    principalId: row.principal_id,
    key,
    hostnames: outcome && outcome.matchBy !== 'externalId' ? names.map((n) => n.toLowerCase()) : [],
    externalIds: outcome && outcome.matchBy !== 'hostname' ? names : [],
    system: viewer?.identity ?? null,
    externalId: viewer ? (viewer.identity === 'email' ? viewer.externalId.toLowerCase() : viewer.externalId) : null,
  };
}

/**
 * Every delivery's reads in one statement, one row each (by `ord`): whether the integration row
 * is still the version held and enabled, whether its principal is enabled, the first line of the
 * delivery's key, the principal holding the viewer's identity and the devices named (empty
 * name lists for an unmatched delivery).
 */
const LOOKUP_SQL = `SELECT r.ord,
    (SELECT i.enabled AND i.xmin::text = r.version FROM ticket_integrations i WHERE i.id = r.integration_id) AS current,
    (SELECT NOT p.disabled FROM principals p WHERE p.id = r.principal_id) AS principal_enabled,
    (SELECT d.id::text FROM ticket_deliveries d WHERE d.integration_id = r.integration_id AND d.delivery_key = r.key AND d.first) AS first_id,
    (SELECT i.principal_id FROM principal_identities i JOIN principals p ON p.id = i.principal_id
      WHERE i.system = r.system AND i.external_id = r.external_id AND NOT p.disabled AND p.kind = 'user') AS viewer_id,
    (SELECT COALESCE(json_agg(json_build_object('id', d.id, 'hostname', d.hostname) ORDER BY lower(d.hostname)), '[]'::json)
       FROM (SELECT id, hostname FROM devices
              WHERE NOT retired AND (lower(hostname) = ANY(r.hostnames) OR external_id = ANY(r.external_ids))
              ORDER BY lower(hostname) LIMIT 20) d) AS devices
  FROM jsonb_to_recordset($1::jsonb) AS r(ord integer, integration_id uuid, version text, principal_id uuid, key text,
    hostnames text[], external_ids text[], system text, external_id text)`;

async function lookUp(dataSource: DataSource, asks: LookupAsk[]): Promise<Lookup[]> {
  const rows = asks.map((a, ord) => ({
    ord,
    integration_id: a.integrationId,
    version: a.version,
    principal_id: a.principalId,
    key: a.key,
    hostnames: a.hostnames,
    external_ids: a.externalIds,
    system: a.system,
    external_id: a.externalId,
  }));
  const found = await queryPrepared<{
    ord: number;
    current: boolean | null;
    principal_enabled: boolean | null;
    first_id: string | null;
    devices: { id: string; hostname: string }[];
    viewer_id: string | null;
  }>(dataSource.manager, LOOKUP_SQL, [JSON.stringify(rows)]);
  const byOrd = new Map(found.map((r) => [r.ord, r]));
  return asks.map((_, ord) => {
    const r = byOrd.get(ord);
    if (!r) throw new Error(`the lookup statement did not answer for delivery ${ord}`);
    return {
      current: r.current === true,
      principalEnabled: r.principal_enabled === true,
      firstId: r.first_id,
      devices: r.devices,
      viewerId: r.viewer_id,
    };
  });
}

/** The stored rules, validated (null when they are not valid: saved around the API). */
function validRules(rules: unknown): MappingRule[] | null {
  const parsed = mappingRuleSchema.array().safeParse(rules);
  return parsed.success ? parsed.data : null;
}

/** What the rules make of a delivery; pure. */
function judge(rules: MappingRule[] | null, body: unknown, headers: DeliveryHeaders): Judged {
  if (!rules)
    return {
      line: {
        outcome: 'unmatched',
        statusCode: 202,
        reason: 'the integration’s rules are not valid; an administrator must save them again',
      },
    };
  const outcome = firstMatchingRule(rules, { body, headers });
  if (!outcome.matched) return { line: { outcome: 'unmatched', statusCode: 202, reason: outcome.reason } };
  const rule = rules.find((r) => r.name === outcome.rule)!;
  const texts = [outcome.ticketRef, outcome.ticketApiId, outcome.reason, ...outcome.deviceNames, outcome.viewer?.externalId ?? ''];
  if (texts.some((t) => textProblem(t) !== null))
    return {
      line: {
        outcome: 'unmatched',
        statusCode: 202,
        rule: rule.name,
        reason: 'the payload’s text holds characters rcflow cannot store (NUL or a lone surrogate)',
      },
    };
  return {
    outcome,
    rule,
    base: { outcome: 'received', rule: rule.name, ticketRef: outcome.ticketRef, ticketApiId: outcome.ticketApiId, statusCode: 202 },
  };
}

function askOf(integrationId: string, outcome: Matched, line: DeliveryLine): SessionAsk & { viewerId: string } {
  return {
    deviceId: line.deviceId!,
    viewerId: line.viewerId!,
    type: outcome.type,
    access: outcome.access,
    reason: outcome.reason === '' ? undefined : outcome.reason,
    ticketRef: outcome.ticketRef,
    ticket: { integrationId, apiId: outcome.ticketApiId },
  };
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
