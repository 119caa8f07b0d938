import { Inject, Injectable } from '@nestjs/common';
import { randomBytes, randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { Principal, TicketIntegration, loadPrincipalFacts } from '@rcflow/database';
import { Conflict, DomainError, EligibilityDecision, NotFound, PrincipalFacts, UnprocessableRequest, hasPermission } from '@rcflow/domain';
import { SecretBox, defaultRules, type MappingRule, type TicketKind } from '@rcflow/tickets';
import { bigintIdCursor, parseOrThrow } from '../common/validation';
import { AdminConnection, AdminContext, changesOf, conflictOnDuplicate, recordAudit } from '../admin/admin-context';
import { Page, PageRequest, keysetPage } from '../admin/admin-page';
import {
  CreateIntegrationInput,
  UpdateIntegrationInput,
  createIntegrationSchema,
  listDeliveriesQuery,
  updateIntegrationSchema,
} from './ticket-integrations.schemas';
import { TICKET_SECRET_BOX, TicketHooks } from './ticket-hooks.service';
import { SessionsService } from '../sessions/sessions.service';
import type { z } from 'zod';

/** An integration as the API shows it: never a secret. */
export interface IntegrationView {
  id: string;
  name: string;
  kind: TicketKind;
  principalId: string;
  inboundAuth: 'hmac' | 'token';
  /** How many inbound secrets are active (2 during a rotation). */
  activeSecrets: number;
  /** Where deliveries go, relative to the API's base URL. */
  webhookPath: string;
  outbound: { url: string; credentialFields: string[] } | null;
  rules: MappingRule[];
  enabled: boolean;
  createdAt: string;
  updatedAt: string;
}

/** A dry run's answer. */
export interface DryRunView {
  outcome: string;
  reason: string | null;
  rule: string | null;
  ticketRef: string | null;
  deviceId: string | null;
  viewerId: string | null;
  session: { type: string; access: string; reason: string | null } | null;
  eligibility: EligibilityDecision | null;
}

/** A new or rotated inbound secret: the response is its only copy. */
export type IssuedSecret = IntegrationView & { inboundSecret: string };

interface Sealed {
  inbound: string[];
  outboundFields: string[];
}

function openSealed(box: SecretBox, row: TicketIntegration): Sealed {
  const inbound = JSON.parse(box.open(row.inboundSecretsSealed, row.id)) as string[];
  const outbound = row.outboundCredentialsSealed
    ? (JSON.parse(box.open(row.outboundCredentialsSealed, row.id)) as Record<string, string>)
    : {};
  return { inbound, outboundFields: Object.keys(outbound).sort() };
}

function view(box: SecretBox, row: TicketIntegration): IntegrationView {
  const sealed = openSealed(box, row);
  return {
    id: row.id,
    name: row.name,
    kind: row.kind as TicketKind,
    principalId: row.principalId,
    inboundAuth: row.inboundAuth as 'hmac' | 'token',
    activeSecrets: sealed.inbound.length,
    webhookPath: `/v1/hooks/${row.id}`,
    outbound: row.outboundUrl ? { url: row.outboundUrl, credentialFields: sealed.outboundFields } : null,
    rules: row.rules as MappingRule[],
    enabled: row.enabled,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

const newSecret = () => randomBytes(32).toString('base64url');

/** The principal must be an enabled service that may request sessions on behalf of others. */
async function checkActingPrincipal(manager: EntityManager, principalId: string): Promise<void> {
  const principal = await manager.getRepository(Principal).findOneBy({ id: principalId });
  if (!principal) throw new UnprocessableRequest(`principalId ${principalId} is not a known principal`);
  if (principal.kind !== 'service')
    throw new UnprocessableRequest(`${principal.name} is a ${principal.kind}; an integration acts as a service principal`);
  const facts = await loadPrincipalFacts(manager, principalId);
  if (!facts || !hasPermission(facts.grants, 'session.request_on_behalf'))
    throw new UnprocessableRequest(
      `${principal.name} is disabled or holds no role with session.request_on_behalf (assign ticket_integration)`,
    );
}

async function lockedIntegration(ctx: AdminContext, id: string): Promise<TicketIntegration> {
  const row = await ctx.manager.getRepository(TicketIntegration).findOne({ where: { id }, lock: { mode: 'pessimistic_write' } });
  if (!row) throw new NotFound('ticket integration', id);
  return row;
}

export async function createIntegration(ctx: AdminContext, box: SecretBox, input: CreateIntegrationInput): Promise<IssuedSecret> {
  const i = parseOrThrow(createIntegrationSchema, input);
  await checkActingPrincipal(ctx.manager, i.principalId);
  const id = randomUUID();
  const inboundSecret = i.inboundSecret ?? newSecret();
  const rules = i.rules ?? defaultRules(i.kind);
  await conflictOnDuplicate(`a ticket integration named ${i.name} exists`, () =>
    ctx.manager.getRepository(TicketIntegration).insert({
      id,
      name: i.name,
      kind: i.kind,
      principalId: i.principalId,
      inboundAuth: i.inboundAuth ?? 'hmac',
      inboundSecretsSealed: box.seal(JSON.stringify([inboundSecret]), id),
      outboundUrl: i.outbound?.url ?? null,
      outboundCredentialsSealed: i.outbound ? box.seal(JSON.stringify(i.outbound.credentials), id) : null,
      rules,
      enabled: i.enabled ?? true,
    }),
  );
  await recordAudit(ctx, {
    stream: `ticket_integration:${id}`,
    action: 'ticket_integration.created',
    data: { name: i.name, kind: i.kind, principalId: i.principalId, rules: rules.map((r) => r.name), outboundUrl: i.outbound?.url ?? null },
  });
  const row = await ctx.manager.getRepository(TicketIntegration).findOneByOrFail({ id });
  return { ...view(box, row), inboundSecret };
}

export async function updateIntegration(
  ctx: AdminContext,
  box: SecretBox,
  id: string,
  input: UpdateIntegrationInput,
): Promise<IntegrationView> {
  const p = parseOrThrow(updateIntegrationSchema, input);
  const row = await lockedIntegration(ctx, id);
  const current = { name: row.name, inboundAuth: row.inboundAuth, rules: row.rules, enabled: row.enabled };
  const changes = changesOf(current, { name: p.name, inboundAuth: p.inboundAuth, rules: p.rules, enabled: p.enabled });
  const outboundChanged = p.outbound !== undefined;
  if (Object.keys(changes).length === 0 && !outboundChanged) return view(box, row);
  await conflictOnDuplicate(`a ticket integration named ${p.name ?? row.name} exists`, () =>
    ctx.manager.getRepository(TicketIntegration).update(id, {
      ...(p.name !== undefined && { name: p.name }),
      ...(p.inboundAuth !== undefined && { inboundAuth: p.inboundAuth }),
      ...(p.rules !== undefined && { rules: p.rules }),
      ...(p.enabled !== undefined && { enabled: p.enabled }),
      ...(outboundChanged && {
        outboundUrl: p.outbound?.url ?? null,
        outboundCredentialsSealed: p.outbound ? box.seal(JSON.stringify(p.outbound.credentials), id) : null,
      }),
    }),
  );
  // The audit names what changed; rules by name, credentials never.
  const audited = Object.fromEntries(
    Object.entries(changes).map(([field, c]) =>
      field === 'rules'
        ? [field, { from: (c.from as MappingRule[]).map((r) => r.name), to: (c.to as MappingRule[]).map((r) => r.name) }]
        : [field, c],
    ),
  );
  await recordAudit(ctx, {
    stream: `ticket_integration:${id}`,
    action: 'ticket_integration.updated',
    data: {
      changes: audited,
      ...(outboundChanged && {
        outbound: p.outbound ? { url: p.outbound.url, credentialFields: Object.keys(p.outbound.credentials).sort() } : null,
      }),
    },
  });
  return view(box, await ctx.manager.getRepository(TicketIntegration).findOneByOrFail({ id }));
}

/** Adds a new inbound secret; the previous newest one stays valid until dropped, so senders can move over. */
export async function rotateSecret(ctx: AdminContext, box: SecretBox, id: string, given: string | undefined): Promise<IssuedSecret> {
  const row = await lockedIntegration(ctx, id);
  const current = openSealed(box, row).inbound;
  const inboundSecret = given ?? newSecret();
  if (current.includes(inboundSecret)) throw new Conflict('this secret is already active');
  const next = [current[current.length - 1], inboundSecret].filter((s): s is string => s !== undefined);
  await ctx.manager.getRepository(TicketIntegration).update(id, { inboundSecretsSealed: box.seal(JSON.stringify(next), id) });
  await recordAudit(ctx, {
    stream: `ticket_integration:${id}`,
    action: 'ticket_integration.secret_rotated',
    data: { activeSecrets: next.length },
  });
  return { ...view(box, await ctx.manager.getRepository(TicketIntegration).findOneByOrFail({ id })), inboundSecret };
}

/** Ends a rotation: only the newest inbound secret stays valid. */
export async function dropPreviousSecret(ctx: AdminContext, box: SecretBox, id: string): Promise<IntegrationView> {
  const row = await lockedIntegration(ctx, id);
  const current = openSealed(box, row).inbound;
  if (current.length > 1) {
    await ctx.manager
      .getRepository(TicketIntegration)
      .update(id, { inboundSecretsSealed: box.seal(JSON.stringify(current.slice(-1)), id) });
    await recordAudit(ctx, { stream: `ticket_integration:${id}`, action: 'ticket_integration.secret_dropped', data: { activeSecrets: 1 } });
  }
  return view(box, await ctx.manager.getRepository(TicketIntegration).findOneByOrFail({ id }));
}

export async function deleteIntegration(ctx: AdminContext, id: string): Promise<{ deleted: true }> {
  const row = await lockedIntegration(ctx, id);
  await ctx.manager.getRepository(TicketIntegration).delete(id);
  await recordAudit(ctx, {
    stream: `ticket_integration:${id}`,
    action: 'ticket_integration.deleted',
    data: { name: row.name, kind: row.kind },
  });
  return { deleted: true };
}

export interface DeliveryView {
  id: string;
  receivedAt: string;
  deliveryKey: string;
  keySource: string;
  first: boolean;
  eventType: string | null;
  signature: string;
  outcome: string;
  rule: string | null;
  ticketRef: string | null;
  deviceId: string | null;
  viewerId: string | null;
  sessionId: string | null;
  reason: string | null;
  statusCode: number;
}

interface DeliveryRow {
  id: string;
  received_at: Date;
  delivery_key: string;
  key_source: string;
  first: boolean;
  event_type: string | null;
  signature: string;
  outcome: string;
  rule: string | null;
  ticket_ref: string | null;
  device_id: string | null;
  viewer_id: string | null;
  session_id: string | null;
  reason: string | null;
  status_code: number;
}

/** Ticket integrations, administered with admin.write over all collections (they act across collections through their principal's grants). */
@Injectable()
export class TicketIntegrationsService {
  constructor(
    private readonly admin: AdminConnection,
    private readonly hooks: TicketHooks,
    private readonly sessions: SessionsService,
    @Inject(TICKET_SECRET_BOX) private readonly maybeBox: SecretBox | null,
  ) {}

  /**
   * What the integration's rules would do with a payload — rule, ticket, device, viewer and the
   * eligibility checks the worker would run — without storing anything.
   */
  async dryRun(id: string, body: unknown, headers: Record<string, string> = {}): Promise<DryRunView> {
    const integration = await this.hooks.integration(id);
    if (!integration) throw new NotFound('ticket integration', id);
    const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    const resolved = await this.hooks.resolve(integration, body, lower);
    const line = 'ask' in resolved ? resolved.line : resolved;
    const shown = {
      rule: line.rule ?? null,
      ticketRef: line.ticketRef ?? null,
      deviceId: line.deviceId ?? null,
      viewerId: line.viewerId ?? null,
    };
    if (!('ask' in resolved)) return { outcome: line.outcome, reason: line.reason ?? null, ...shown, session: null, eligibility: null };
    const { ask, caller } = resolved;
    const session = { type: ask.type, access: ask.access, reason: ask.reason ?? null };
    try {
      const eligibility = await this.sessions.dryRun(caller, ask);
      return { outcome: 'would_request_session', reason: null, ...shown, session, eligibility };
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      return { outcome: 'refused', reason: err.message, ...shown, session, eligibility: null };
    }
  }

  private get box(): SecretBox {
    if (!this.maybeBox) throw new Conflict('ticket integrations need TICKET_SECRETS_KEY (32 bytes, hex or base64) in the environment');
    return this.maybeBox;
  }

  create(caller: PrincipalFacts, input: CreateIntegrationInput): Promise<IssuedSecret> {
    return this.admin.write(caller, (ctx) => createIntegration(ctx, this.box, input));
  }
  update(caller: PrincipalFacts, id: string, input: UpdateIntegrationInput): Promise<IntegrationView> {
    return this.admin.write(caller, (ctx) => updateIntegration(ctx, this.box, id, input));
  }
  rotate(caller: PrincipalFacts, id: string, secret: string | undefined): Promise<IssuedSecret> {
    return this.admin.write(caller, (ctx) => rotateSecret(ctx, this.box, id, secret));
  }
  dropPrevious(caller: PrincipalFacts, id: string): Promise<IntegrationView> {
    return this.admin.write(caller, (ctx) => dropPreviousSecret(ctx, this.box, id));
  }
  delete(caller: PrincipalFacts, id: string): Promise<{ deleted: true }> {
    return this.admin.write(caller, (ctx) => deleteIntegration(ctx, id));
  }

  async get(id: string): Promise<IntegrationView> {
    const row = await this.admin.manager.getRepository(TicketIntegration).findOneBy({ id });
    if (!row) throw new NotFound('ticket integration', id);
    return view(this.box, row);
  }

  list(page: PageRequest): Promise<Page<IntegrationView>> {
    return keysetPage(this.admin.manager.getRepository(TicketIntegration).createQueryBuilder('t'), 't', page, (rows) =>
      rows.map((r) => view(this.box, r)),
    );
  }

  /** The delivery log, newest first, keyset-paged by id. */
  async deliveries(id: string, q: z.infer<typeof listDeliveriesQuery>): Promise<Page<DeliveryView>> {
    await this.get(id);
    const params: unknown[] = [id];
    const where = ['integration_id = $1'];
    if (q.outcome) where.push(`outcome = $${params.push(q.outcome)}`);
    if (q.sessionId) where.push(`session_id = $${params.push(q.sessionId)}::uuid`);
    if (q.cursor) {
      const [before] = bigintIdCursor.decode(q.cursor);
      where.push(`id < $${params.push(before)}::bigint`);
    }
    const rows = await this.admin.manager.query<DeliveryRow[]>(
      `SELECT id::text AS id, received_at, delivery_key, key_source, first, event_type, signature, outcome, rule, ticket_ref, device_id, viewer_id, session_id, reason, status_code
         FROM ticket_deliveries WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT ${q.limit + 1}`,
      params,
    );
    const items = rows.slice(0, q.limit).map((r): DeliveryView => ({
      id: r.id,
      receivedAt: new Date(r.received_at).toISOString(),
      deliveryKey: r.delivery_key,
      keySource: r.key_source,
      first: r.first,
      eventType: r.event_type,
      signature: r.signature,
      outcome: r.outcome,
      rule: r.rule,
      ticketRef: r.ticket_ref,
      deviceId: r.device_id,
      viewerId: r.viewer_id,
      sessionId: r.session_id,
      reason: r.reason,
      statusCode: r.status_code,
    }));
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > q.limit && last ? bigintIdCursor.encode([last.id]) : null };
  }
}
