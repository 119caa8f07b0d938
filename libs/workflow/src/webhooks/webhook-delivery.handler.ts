import { Inject, Injectable, Logger } from '@nestjs/common';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { rowsOf } from '@rcflow/database';
import { SecretBox } from '@rcflow/tickets';
import { countWebhookDelivery } from '@rcflow/observability';
import { retryDelayMs, signedWebhookHeaders } from '@rcflow/webhooks';

interface Claimed {
  id: string;
  subscription_id: string;
  body: string;
  attempts: number;
}

interface Target {
  url: string;
  enabled: boolean;
  secret_sealed: string;
  /** The secret before a rotation, while it still signs. */
  previous_sealed: string | null;
}

/** What an attempt came to: the job is done, or runs again after a delay. */
export type DeliveryRun = { retryInMs: number } | null;

/** The response body kept in the attempt log, at most. */
const EXCERPT_CHARS = 256;
const MAX_ERROR = 500;
/** A claimed delivery's lease outlasts its request's timeout by this much. */
const LEASE_MARGIN_MS = 5000;

/** The first `max` characters of a response body, without reading the rest of it. */
async function excerptOf(res: Response, max: number): Promise<string> {
  if (!res.body) return '';
  const reader = (res.body as unknown as WebReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < max * 4) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, max);
}

/**
 * One attempt of a webhook delivery. The delivery is claimed first (its attempt counted, a lease
 * for the request's timeout) so no transaction is held while the receiver answers; a second run
 * of the same job finds it delivered, dead, or leased, and acts on none of them twice. The answer
 * is recorded with its attempt row under the claim it made: 2xx delivered; anything else (a
 * redirect too: they are not followed) or no answer in time, retried with backoff until
 * WEBHOOK_MAX_ATTEMPTS, then dead.
 */
@Injectable()
export class WebhookDeliveryHandler {
  private readonly logger = new Logger(WebhookDeliveryHandler.name);
  private readonly box: SecretBox;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {
    this.box = new SecretBox(config.webhooks.secretsKey);
  }

  async handle(deliveryId: string, cycle: number, random: () => number = Math.random): Promise<DeliveryRun> {
    const { timeoutMs } = this.config.webhooks;
    const [claimed] = rowsOf<Claimed>(
      await this.dataSource.query(
        `UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = NULL,
                lease_until = now() + make_interval(secs => $3::float8 / 1000)
          WHERE id = $1 AND cycle = $2 AND state = 'pending' AND (lease_until IS NULL OR lease_until < now())
          RETURNING id, subscription_id, body, attempts`,
        [deliveryId, cycle, timeoutMs + LEASE_MARGIN_MS],
      ),
    );
    if (!claimed) {
      // Delivered, dead, re-driven into another cycle, deleted: nothing to do. Leased: the other run may have died; look again after its lease.
      const [held] = await this.dataSource.query<{ wait_ms: number }[]>(
        `SELECT greatest(0, extract(epoch FROM lease_until - now()) * 1000)::int AS wait_ms FROM webhook_deliveries
          WHERE id = $1 AND cycle = $2 AND state = 'pending' AND lease_until >= now()`,
        [deliveryId, cycle],
      );
      return held ? { retryInMs: held.wait_ms + 100 } : null;
    }
    const [target] = await this.dataSource.query<Target[]>(
      `SELECT url, enabled, secret_sealed, CASE WHEN previous_secret_until > now() THEN previous_secret_sealed END AS previous_sealed
         FROM webhook_subscriptions WHERE id = $1`,
      [claimed.subscription_id],
    );
    if (!target?.enabled) {
      await this.settle(claimed, cycle, 'failed', null, target ? 'the subscription is disabled' : 'the subscription was deleted', null);
      return null;
    }
    let secrets: string[];
    try {
      secrets = [target.secret_sealed, target.previous_sealed]
        .filter((sealed): sealed is string => sealed !== null)
        .map((sealed) => this.box.open(sealed, claimed.subscription_id));
    } catch {
      await this.settle(claimed, cycle, 'failed', null, 'the signing secret does not open with this WEBHOOK_SECRETS_KEY', null);
      return null;
    }

    const startedAt = new Date();
    const started = performance.now();
    let status: number | null = null;
    let excerpt: string | null = null;
    let error: string | null = null;
    try {
      const res = await fetch(target.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'rcflow-webhooks',
          ...signedWebhookHeaders(secrets, claimed.id, Math.floor(startedAt.getTime() / 1000), claimed.body),
        },
        body: claimed.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
      status = res.status;
      excerpt = (await excerptOf(res, EXCERPT_CHARS).catch(() => '')) || null;
      if (status < 200 || status > 299) error = `answered ${status}${status >= 300 && status < 400 ? ' (redirects are not followed)' : ''}`;
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      // By name: the DOMException AbortSignal.timeout throws is not always an Error of this realm.
      error =
        (err as { name?: unknown } | null)?.name === 'TimeoutError'
          ? `no answer within ${timeoutMs} ms`
          : `could not reach the receiver${cause ? ` (${cause})` : ''}: ${(err as Error).message}`;
    }
    const attempt = { at: startedAt, durationMs: Math.round(performance.now() - started), status, excerpt, error };
    if (error === null) {
      await this.settle(claimed, cycle, 'delivered', attempt, null, null);
      return null;
    }
    const { maxAttempts, backoffMs, backoffCapMs } = this.config.webhooks;
    if (claimed.attempts >= maxAttempts) {
      await this.settle(claimed, cycle, 'dead', attempt, `gave up after ${claimed.attempts} attempts: ${error}`, null);
      this.logger.warn(`webhook delivery ${claimed.id} is dead after ${claimed.attempts} attempts: ${error}`);
      return null;
    }
    const retryInMs = retryDelayMs(claimed.attempts, backoffMs, backoffCapMs, random());
    await this.settle(claimed, cycle, 'pending', attempt, error, retryInMs);
    return { retryInMs };
  }

  /** Records the attempt and the delivery's new state together, under the claim made (same cycle and attempt count, still pending). */
  private async settle(
    claimed: Claimed,
    cycle: number,
    state: 'pending' | 'delivered' | 'dead' | 'failed',
    attempt: { at: Date; durationMs: number; status: number | null; excerpt: string | null; error: string | null } | null,
    lastError: string | null,
    retryInMs: number | null,
  ): Promise<void> {
    const recorded = await this.dataSource.transaction(async (tx) => {
      const updated = rowsOf(
        await tx.query(
          `UPDATE webhook_deliveries SET state = $4, lease_until = NULL, last_error = $5,
                  last_status = coalesce($6, last_status),
                  next_attempt_at = CASE WHEN $7::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $7::float8 / 1000) END,
                  delivered_at = CASE WHEN $4 = 'delivered' THEN now() ELSE delivered_at END
            WHERE id = $1 AND cycle = $2 AND attempts = $3 AND state = 'pending' RETURNING id`,
          [claimed.id, cycle, claimed.attempts, state, lastError?.slice(0, MAX_ERROR) ?? null, attempt?.status ?? null, retryInMs],
        ),
      );
      if (updated.length === 0 || !attempt) return false;
      await tx.query(
        `INSERT INTO webhook_delivery_attempts (delivery_id, cycle, attempt, at, duration_ms, status_code, error, response_excerpt)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [
          claimed.id,
          cycle,
          claimed.attempts,
          attempt.at,
          attempt.durationMs,
          attempt.status,
          attempt.error?.slice(0, MAX_ERROR) ?? null,
          attempt.excerpt,
        ],
      );
      return true;
    });
    // Counted once the attempt is on record (a lost claim's attempt was another run's to count).
    if (recorded) countWebhookDelivery(state === 'pending' ? 'retry' : state === 'delivered' ? 'delivered' : 'dead');
  }
}
