import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { AUDIT_ITEM_COLUMNS, AuditTail, auditItem, type AuditEventRow } from '@rcflow/audit';
import { rowsOf } from '@rcflow/database';
import { JobItem, JobName, OutboxRelay, QueueName, jobIdOf, writeOutbox } from '@rcflow/jobs';
import { matchesEventType, type WebhookBody } from '@rcflow/webhooks';

/** Audit events read per transaction. */
const BATCH = 500;
/** Pending deliveries looked at per sweep. */
const SWEEP_BATCH = 500;

interface Subscription {
  id: string;
  event_types: string[];
  collection_id: string | null;
  created_at: Date;
}

/** A hook between the steps of one dispatch, for tests that crash it there. */
export type DispatchHook = (step: 'read' | 'written', tx: EntityManager) => Promise<void> | void;

/** The body of a delivery telling of `row`. */
export function deliveryBody(row: AuditEventRow): string {
  const item = auditItem(row);
  const body: WebhookBody = { type: item.action, timestamp: item.occurredAt, data: item as unknown as Record<string, unknown> };
  return JSON.stringify(body);
}

/**
 * Fans the audit trail out to webhook subscriptions: reads the events after the stored cursor
 * with the gap-safe audit tail (an event that commits after a later id is still told, none twice),
 * writes one delivery (and its outbox row) per matching enabled subscription, and advances the
 * cursor, the writes in one transaction — so a crash anywhere leaves either all of it or none, and
 * the next run reads the same events again. The cursor row is locked (SKIP LOCKED) for the
 * transaction and must still be where the events were read from: of several workers, one tells
 * each page and the others skip it. The unique (subscription, event) index is the last guard.
 *
 * Also re-enqueues pending deliveries whose job is gone (Redis lost it).
 */
@Injectable()
export class WebhookDispatcher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(WebhookDispatcher.name);
  private timers: NodeJS.Timeout[] = [];
  private running: Promise<unknown> | null = null;
  private stopped = false;
  /** The tail this dispatcher read last with, while the stored position is where it stands. */
  private tail: AuditTail | null = null;

  constructor(
    private readonly dataSource: DataSource,
    private readonly relay: OutboxRelay,
    @InjectQueue(QueueName.Webhooks) private readonly queue: Queue,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  onApplicationBootstrap(): void {
    const every = (ms: number, work: () => Promise<number>, what: string) => {
      const timer = setInterval(() => {
        if (this.running || this.stopped) return;
        this.running = work()
          .catch((err: unknown) => this.logger.warn(`${what} skipped: ${(err as Error).message}`))
          .finally(() => (this.running = null));
      }, ms);
      timer.unref();
      this.timers.push(timer);
    };
    every(this.config.webhooks.dispatchIntervalMs, () => this.dispatchAll(), 'webhook dispatch');
    every(this.config.sweep.intervalMs, async () => (await this.sweep()) + (await this.prune()), 'webhook sweep');
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    await this.running;
  }

  /** Dispatches until the trail is read to its end (or another dispatcher holds the cursor); returns the deliveries written. */
  async dispatchAll(): Promise<number> {
    let total = 0;
    for (;;) {
      const round = await this.dispatchOnce();
      total += round.deliveries;
      if (!round.more || round.skipped || this.stopped) break;
    }
    if (total > 0) this.relay.kick();
    return total;
  }

  /**
   * One round: the events the gap-safe tail (libs/audit) hands out after the stored position, then
   * one transaction that locks the cursor (SKIP LOCKED: another dispatcher at work skips the
   * round), checks it still stands where the events were read from, writes their deliveries and
   * outbox rows and moves the cursor past them. The tail reads on connections of its own (its
   * "after the gap" xid must come from a transaction of its own), before the transaction, so it
   * also works on the embedded one-connection database. Its state (a gap it waits on) is kept
   * between rounds while the stored position is the one it reached.
   */
  async dispatchOnce(hook?: DispatchHook): Promise<{ events: number; deliveries: number; skipped: boolean; more: boolean }> {
    const readCursor = () =>
      this.dataSource.query<{ position: string }[]>(`SELECT position #>> '{}' AS position FROM webhook_cursor WHERE id = 1`);
    let [stored] = await readCursor();
    if (!stored) {
      // The first dispatch ever starts at the end of the trail: subscriptions hear what happens from now on.
      await this.dataSource.query(
        `INSERT INTO webhook_cursor (id, position) SELECT 1, to_jsonb(coalesce(max(id), 0)::text) FROM audit_events ON CONFLICT (id) DO NOTHING`,
      );
      [stored] = await readCursor();
    }
    if (!stored) throw new Error('webhook_cursor has no row');
    const from = stored.position;
    if (this.tail?.through !== from) {
      this.tail = AuditTail.after(this.dataSource, from, { columns: AUDIT_ITEM_COLUMNS, pageSize: BATCH });
    }
    const tail: AuditTail = this.tail;
    const page = await tail.next();
    const rows = page.rows as unknown as AuditEventRow[];
    // Nothing new (or held at a gap): nothing to write, no transaction.
    if (rows.length === 0 && page.through === from) return { events: 0, deliveries: 0, skipped: false, more: false };
    const result = await this.dataSource
      .transaction(async (tx) => {
        const [cursor] = await tx.query<{ position: string }[]>(
          `SELECT position #>> '{}' AS position FROM webhook_cursor WHERE id = 1 FOR UPDATE SKIP LOCKED`,
        );
        // Held by another dispatcher, or moved on since it was read: that one told these events.
        if (cursor?.position !== from) return null;
        await hook?.('read', tx);
        let deliveries = 0;
        if (rows.length > 0) {
          const subscriptions = await tx.query<Subscription[]>(
            `SELECT id, event_types, collection_id, created_at FROM webhook_subscriptions WHERE enabled`,
          );
          if (subscriptions.length > 0) deliveries = await this.fanOut(tx, rows, subscriptions);
        }
        await hook?.('written', tx);
        if (page.through !== from) {
          await tx.query(`UPDATE webhook_cursor SET position = to_jsonb($1::text), updated_at = now() WHERE id = 1`, [page.through]);
        }
        return { events: rows.length, deliveries, skipped: false, more: page.more };
      })
      .catch((err: unknown) => {
        // Not recorded: the next round starts again from the stored position.
        if (this.tail === tail) this.tail = null;
        throw err;
      });
    if (result === null) {
      if (this.tail === tail) this.tail = null;
      return { events: 0, deliveries: 0, skipped: true, more: false };
    }
    return result;
  }

  private async fanOut(tx: EntityManager, rows: AuditEventRow[], subscriptions: Subscription[]): Promise<number> {
    // Which (collection, device) pairs the collection filters need, in one query.
    const filtered = [...new Set(subscriptions.map((s) => s.collection_id).filter((c): c is string => c !== null))];
    const devices = [...new Set(rows.map((r) => r.device_id).filter((d): d is string => d !== null))];
    const members = new Set<string>();
    if (filtered.length > 0 && devices.length > 0) {
      const found = await tx.query<{ collection_id: string; device_id: string }[]>(
        `SELECT collection_id, device_id FROM collection_members WHERE collection_id = ANY($1::uuid[]) AND device_id = ANY($2::uuid[])`,
        [filtered, devices],
      );
      for (const m of found) members.add(`${m.collection_id}/${m.device_id}`);
    }
    const planned: { id: string; subscriptionId: string; eventId: string; type: string; body: string }[] = [];
    for (const row of rows) {
      let body: string | null = null;
      for (const s of subscriptions) {
        // A subscription hears the events from its creation on.
        if (new Date(row.occurred_at).getTime() < new Date(s.created_at).getTime()) continue;
        if (!matchesEventType(s.event_types, row.action)) continue;
        if (s.collection_id !== null && (row.device_id === null || !members.has(`${s.collection_id}/${row.device_id}`))) continue;
        body ??= deliveryBody(row);
        planned.push({ id: randomUUID(), subscriptionId: s.id, eventId: String(row.id), type: row.action, body });
      }
    }
    if (planned.length === 0) return 0;
    const inserted = await tx.query<{ id: string }[]>(
      `INSERT INTO webhook_deliveries (id, subscription_id, event_id, event_type, body)
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[])
       ON CONFLICT (subscription_id, event_id) DO NOTHING RETURNING id`,
      [
        planned.map((p) => p.id),
        planned.map((p) => p.subscriptionId),
        planned.map((p) => p.eventId),
        planned.map((p) => p.type),
        planned.map((p) => p.body),
      ],
    );
    await writeOutbox(
      tx,
      inserted.map((r) => ({ queue: QueueName.Webhooks, name: JobName.WebhookDelivery, data: { deliveryId: r.id, cycle: 0 } })),
    );
    return inserted.length;
  }

  /** Deletes up to a batch of deliveries over for longer than WEBHOOK_RETENTION_DAYS, with their attempts. Returns how many. */
  async prune(): Promise<number> {
    return this.dataSource.transaction(async (tx) => {
      const gone = rowsOf<{ id: string }>(
        await tx.query(
          `DELETE FROM webhook_deliveries WHERE id IN (
             SELECT id FROM webhook_deliveries WHERE state <> 'pending' AND created_at < now() - make_interval(days => $1)
              ORDER BY created_at LIMIT ${SWEEP_BATCH} FOR UPDATE SKIP LOCKED)
           RETURNING id`,
          [this.config.webhooks.retentionDays],
        ),
      );
      if (gone.length > 0) {
        await tx.query(`DELETE FROM webhook_delivery_attempts WHERE delivery_id = ANY($1::uuid[])`, [gone.map((g) => g.id)]);
      }
      return gone.length;
    });
  }

  /**
   * Pending deliveries whose job is gone: not leased, due (or never attempted) for longer than the
   * stale limit, no outbox row and no live job. Given their job again. Returns how many.
   */
  async sweep(): Promise<number> {
    const stale = await this.dataSource.query<{ id: string; cycle: number; next_attempt_at: Date | null }[]>(
      `SELECT d.id, d.cycle, d.next_attempt_at FROM webhook_deliveries d
        WHERE d.state = 'pending' AND (d.lease_until IS NULL OR d.lease_until < now())
          AND coalesce(d.next_attempt_at, d.created_at) < now() - make_interval(secs => $1::float8 / 1000)
          AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.job_id = 'webhook.' || d.id::text || '.' || d.cycle::text)
        ORDER BY coalesce(d.next_attempt_at, d.created_at) LIMIT ${SWEEP_BATCH}`,
      [this.config.sweep.staleMs],
    );
    const lost: JobItem[] = [];
    for (const d of stale) {
      const item: JobItem = { queue: QueueName.Webhooks, name: JobName.WebhookDelivery, data: { deliveryId: d.id, cycle: d.cycle } };
      const job = await this.queue.getJob(jobIdOf(item));
      const state = job ? await job.getState() : 'unknown';
      if (state === 'waiting' || state === 'active' || state === 'delayed' || state === 'prioritized') continue;
      if (job) await job.remove();
      lost.push(item);
    }
    if (lost.length === 0) return 0;
    await this.dataSource.transaction((tx) => writeOutbox(tx, lost));
    this.relay.kick();
    this.logger.warn(`re-enqueued ${lost.length} webhook deliveries whose jobs were gone`);
    return lost.length;
  }
}
