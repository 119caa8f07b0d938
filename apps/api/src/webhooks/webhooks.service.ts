import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { RCFLOW_CONFIG, type RcflowConfig } from '@rcflow/config';
import { Collection, WebhookDelivery, WebhookDeliveryAttempt, WebhookSubscription } from '@rcflow/database';
import { Conflict, NotFound, PrincipalFacts, UnprocessableRequest, ValidationFailed } from '@rcflow/domain';
import { JobName, OutboxRelay, QueueName, writeOutbox } from '@rcflow/jobs';
import { SecretBox } from '@rcflow/tickets';
import { PING_EVENT_TYPE, newWebhookSecret, targetUrlProblem, type WebhookBody } from '@rcflow/webhooks';
import { parseOrThrow } from '../common/validation';
import { AdminConnection, AdminContext, changesOf, recordAudit } from '../admin/admin-context';
import { Page, PageRequest, keysetPage } from '../admin/admin-page';
import {
  CreateWebhookInput,
  DeliveriesQuery,
  RotateSecretInput,
  UpdateWebhookInput,
  createWebhookSchema,
  rotateSecretSchema,
  updateWebhookSchema,
} from './webhooks.schemas';

/** A subscription as the API shows it: never its secret. */
export interface WebhookView {
  id: string;
  url: string;
  eventTypes: string[];
  collectionId: string | null;
  enabled: boolean;
  description: string | null;
  /** After a rotation: until when deliveries are signed with the previous secret too (null: only the current one). */
  previousSecretValidUntil: string | null;
  createdAt: string;
  updatedAt: string;
}

/** A new or rotated secret: the response is its only copy. */
export type IssuedWebhookSecret = WebhookView & { secret: string };

export interface DeliveryView {
  id: string;
  webhookId: string;
  /** The audit event told of (null for a test ping). */
  eventId: string | null;
  eventType: string;
  /** pending (in flight or waiting to retry), delivered, failed (could not be sent as configured) or dead (attempts ran out). */
  status: string;
  /** Attempts in the current cycle. */
  attempts: number;
  redrives: number;
  nextAttemptAt: string | null;
  lastStatusCode: number | null;
  lastError: string | null;
  deliveredAt: string | null;
  createdAt: string;
}

export interface AttemptView {
  cycle: number;
  attempt: number;
  at: string;
  durationMs: number;
  statusCode: number | null;
  error: string | null;
  responseExcerpt: string | null;
}

/** One delivery with what it sends and every attempt. */
export type DeliveryDetail = DeliveryView & { payload: unknown; attemptLog: AttemptView[] };

const view = (s: WebhookSubscription): WebhookView => ({
  id: s.id,
  url: s.url,
  eventTypes: s.eventTypes,
  collectionId: s.collectionId,
  enabled: s.enabled,
  description: s.description,
  previousSecretValidUntil:
    s.previousSecretUntil && s.previousSecretUntil.getTime() > Date.now() ? s.previousSecretUntil.toISOString() : null,
  createdAt: s.createdAt.toISOString(),
  updatedAt: s.updatedAt.toISOString(),
});

const deliveryView = (d: WebhookDelivery): DeliveryView => ({
  id: d.id,
  webhookId: d.subscriptionId,
  eventId: d.eventId,
  eventType: d.eventType,
  status: d.state,
  attempts: d.attempts,
  redrives: d.cycle,
  nextAttemptAt: d.nextAttemptAt?.toISOString() ?? null,
  lastStatusCode: d.lastStatus,
  lastError: d.lastError,
  deliveredAt: d.deliveredAt?.toISOString() ?? null,
  createdAt: d.createdAt.toISOString(),
});

/** States an administrator may re-drive a delivery from. */
const REDRIVABLE = ['dead', 'failed'];

function checkUrl(url: string, allowHttp: boolean): void {
  const problem = targetUrlProblem(url, allowHttp);
  if (problem) throw new ValidationFailed(`invalid body: url: ${problem}`, [{ path: 'url', message: problem }]);
}

async function checkCollection(ctx: AdminContext, collectionId: string | null | undefined): Promise<void> {
  if (!collectionId) return;
  if (!(await ctx.manager.getRepository(Collection).existsBy({ id: collectionId })))
    throw new UnprocessableRequest(`collectionId ${collectionId} is not a known collection`);
}

async function locked(ctx: AdminContext, id: string): Promise<WebhookSubscription> {
  const row = await ctx.manager.getRepository(WebhookSubscription).findOne({ where: { id }, lock: { mode: 'pessimistic_write' } });
  if (!row) throw new NotFound('webhook', id);
  return row;
}

export interface WebhookSettings {
  box: SecretBox;
  allowHttp: boolean;
}

export async function createWebhook(ctx: AdminContext, settings: WebhookSettings, input: CreateWebhookInput): Promise<IssuedWebhookSecret> {
  const w = parseOrThrow(createWebhookSchema, input);
  checkUrl(w.url, settings.allowHttp);
  await checkCollection(ctx, w.collectionId);
  const id = randomUUID();
  const secret = newWebhookSecret();
  const fields = {
    url: w.url,
    eventTypes: w.eventTypes,
    collectionId: w.collectionId ?? null,
    enabled: w.enabled ?? true,
    description: w.description ?? null,
  };
  await ctx.manager.getRepository(WebhookSubscription).insert({ id, ...fields, secretSealed: settings.box.seal(secret, id) });
  await recordAudit(ctx, { stream: `webhook:${id}`, action: 'webhook.created', data: fields });
  return { ...view(await ctx.manager.getRepository(WebhookSubscription).findOneByOrFail({ id })), secret };
}

export async function updateWebhook(
  ctx: AdminContext,
  settings: WebhookSettings,
  id: string,
  input: UpdateWebhookInput,
): Promise<WebhookView> {
  const p = parseOrThrow(updateWebhookSchema, input);
  if (p.url !== undefined) checkUrl(p.url, settings.allowHttp);
  const row = await locked(ctx, id);
  const changes = changesOf(view(row), p);
  if (Object.keys(changes).length === 0) return view(row);
  if (changes.collectionId) await checkCollection(ctx, p.collectionId);
  await ctx.manager.getRepository(WebhookSubscription).update(id, {
    ...(p.url !== undefined && { url: p.url }),
    ...(p.eventTypes !== undefined && { eventTypes: p.eventTypes }),
    ...(p.collectionId !== undefined && { collectionId: p.collectionId }),
    ...(p.enabled !== undefined && { enabled: p.enabled }),
    ...(p.description !== undefined && { description: p.description }),
  });
  await recordAudit(ctx, { stream: `webhook:${id}`, action: 'webhook.updated', data: { changes } });
  return view(await ctx.manager.getRepository(WebhookSubscription).findOneByOrFail({ id }));
}

/**
 * A new secret (returned once). The one it replaces still signs every delivery beside it for
 * `previousValidSeconds` (default a day; 0: not at all), so receivers can move over without a
 * refused delivery: Standard Webhooks' several signatures in one header.
 */
export async function rotateWebhookSecret(
  ctx: AdminContext,
  settings: WebhookSettings,
  id: string,
  input: RotateSecretInput,
): Promise<IssuedWebhookSecret> {
  const r = parseOrThrow(rotateSecretSchema, input);
  const row = await locked(ctx, id);
  const overlap = r.previousValidSeconds ?? 86_400;
  const secret = newWebhookSecret();
  await ctx.manager.getRepository(WebhookSubscription).update(id, {
    secretSealed: settings.box.seal(secret, id),
    previousSecretSealed: overlap > 0 ? row.secretSealed : null,
    previousSecretUntil: overlap > 0 ? new Date(Date.now() + overlap * 1000) : null,
  });
  await recordAudit(ctx, { stream: `webhook:${id}`, action: 'webhook.secret_rotated', data: { previousValidSeconds: overlap } });
  return { ...view(await ctx.manager.getRepository(WebhookSubscription).findOneByOrFail({ id })), secret };
}

/** Deletes the subscription with its delivery log; a job still queued for it then finds nothing to send. */
export async function deleteWebhook(ctx: AdminContext, id: string): Promise<{ deleted: true }> {
  const row = await locked(ctx, id);
  await ctx.manager.query(
    `DELETE FROM webhook_delivery_attempts a USING webhook_deliveries d WHERE a.delivery_id = d.id AND d.subscription_id = $1`,
    [id],
  );
  await ctx.manager.getRepository(WebhookDelivery).delete({ subscriptionId: id });
  await ctx.manager.getRepository(WebhookSubscription).delete(id);
  await recordAudit(ctx, { stream: `webhook:${id}`, action: 'webhook.deleted', data: { url: row.url, eventTypes: row.eventTypes } });
  return { deleted: true };
}

/** Queues a `webhook.ping` delivery to the subscription, whatever its event types. */
export async function testWebhook(ctx: AdminContext, id: string): Promise<DeliveryView> {
  const row = await locked(ctx, id);
  if (!row.enabled) throw new Conflict('this webhook is disabled; enable it to send a test delivery');
  const deliveryId = randomUUID();
  const body: WebhookBody = {
    type: PING_EVENT_TYPE,
    timestamp: new Date().toISOString(),
    data: { webhookId: id, message: 'a test delivery from rcflow' },
  };
  await ctx.manager.getRepository(WebhookDelivery).insert({
    id: deliveryId,
    subscriptionId: id,
    eventId: null,
    eventType: PING_EVENT_TYPE,
    body: JSON.stringify(body),
  });
  await writeOutbox(ctx.manager, [{ queue: QueueName.Webhooks, name: JobName.WebhookDelivery, data: { deliveryId, cycle: 0 } }]);
  await recordAudit(ctx, { stream: `webhook:${id}`, action: 'webhook.tested', data: { deliveryId } });
  return deliveryView(await ctx.manager.getRepository(WebhookDelivery).findOneByOrFail({ id: deliveryId }));
}

/** A dead or failed delivery back to pending: a new cycle of attempts (a new job), the same webhook-id and body. */
export async function redriveDelivery(ctx: AdminContext, deliveryId: string): Promise<DeliveryView> {
  const repo = ctx.manager.getRepository(WebhookDelivery);
  const d = await repo.findOne({ where: { id: deliveryId }, lock: { mode: 'pessimistic_write' } });
  if (!d) throw new NotFound('webhook delivery', deliveryId);
  if (!REDRIVABLE.includes(d.state)) throw new Conflict(`this delivery is ${d.state}; only dead or failed deliveries are re-driven`);
  const subscription = await ctx.manager.getRepository(WebhookSubscription).findOneBy({ id: d.subscriptionId });
  if (!subscription?.enabled) throw new Conflict('its webhook is disabled; enable it before re-driving');
  const cycle = d.cycle + 1;
  await repo.update(d.id, { state: 'pending', attempts: 0, cycle, lastError: null, nextAttemptAt: null, leaseUntil: null });
  await writeOutbox(ctx.manager, [{ queue: QueueName.Webhooks, name: JobName.WebhookDelivery, data: { deliveryId: d.id, cycle } }]);
  await recordAudit(ctx, {
    stream: `webhook:${d.subscriptionId}`,
    action: 'webhook.delivery_redriven',
    data: { deliveryId: d.id, eventType: d.eventType, was: d.state, lastError: d.lastError, redrive: cycle },
  });
  return deliveryView(await repo.findOneByOrFail({ id: d.id }));
}

/**
 * Outbound webhooks: administered with admin.write over all collections, read with admin.read
 * over all collections (deliveries carry events about any device).
 */
@Injectable()
export class WebhooksService {
  private readonly settings: WebhookSettings;

  constructor(
    private readonly admin: AdminConnection,
    private readonly relay: OutboxRelay,
    @Inject(RCFLOW_CONFIG) config: RcflowConfig,
  ) {
    this.settings = { box: new SecretBox(config.webhooks.secretsKey), allowHttp: config.webhooks.allowHttp };
  }

  create(caller: PrincipalFacts, input: CreateWebhookInput): Promise<IssuedWebhookSecret> {
    return this.admin.write(caller, (ctx) => createWebhook(ctx, this.settings, input));
  }
  update(caller: PrincipalFacts, id: string, input: UpdateWebhookInput): Promise<WebhookView> {
    return this.admin.write(caller, (ctx) => updateWebhook(ctx, this.settings, id, input));
  }
  rotate(caller: PrincipalFacts, id: string, input: RotateSecretInput): Promise<IssuedWebhookSecret> {
    return this.admin.write(caller, (ctx) => rotateWebhookSecret(ctx, this.settings, id, input));
  }
  delete(caller: PrincipalFacts, id: string): Promise<{ deleted: true }> {
    return this.admin.write(caller, (ctx) => deleteWebhook(ctx, id));
  }
  async test(caller: PrincipalFacts, id: string): Promise<DeliveryView> {
    const d = await this.admin.write(caller, (ctx) => testWebhook(ctx, id));
    this.relay.kick();
    return d;
  }
  async redrive(caller: PrincipalFacts, deliveryId: string): Promise<DeliveryView> {
    const d = await this.admin.write(caller, (ctx) => redriveDelivery(ctx, deliveryId));
    this.relay.kick();
    return d;
  }

  async get(id: string): Promise<WebhookView> {
    const row = await this.admin.manager.getRepository(WebhookSubscription).findOneBy({ id });
    if (!row) throw new NotFound('webhook', id);
    return view(row);
  }

  list(page: PageRequest): Promise<Page<WebhookView>> {
    return keysetPage(this.admin.manager.getRepository(WebhookSubscription).createQueryBuilder('w'), 'w', page, (rows) => rows.map(view));
  }

  /** The delivery log of a subscription, oldest first. */
  async deliveries(id: string, q: DeliveriesQuery): Promise<Page<DeliveryView>> {
    await this.get(id);
    const qb = this.admin.manager.getRepository(WebhookDelivery).createQueryBuilder('d').where('d.subscriptionId = :id', { id });
    if (q.status) qb.andWhere('d.state = :status', { status: q.status });
    return keysetPage(qb, 'd', q, (rows) => rows.map(deliveryView));
  }

  async delivery(deliveryId: string): Promise<DeliveryDetail> {
    const d = await this.admin.manager.getRepository(WebhookDelivery).findOneBy({ id: deliveryId });
    if (!d) throw new NotFound('webhook delivery', deliveryId);
    const attempts = await this.admin.manager.getRepository(WebhookDeliveryAttempt).find({ where: { deliveryId }, order: { id: 'ASC' } });
    return {
      ...deliveryView(d),
      payload: JSON.parse(d.body) as unknown,
      attemptLog: attempts.map((a) => ({
        cycle: a.cycle,
        attempt: a.attempt,
        at: a.at.toISOString(),
        durationMs: a.durationMs,
        statusCode: a.statusCode,
        error: a.error,
        responseExcerpt: a.responseExcerpt,
      })),
    };
  }
}
