import { createHash } from 'node:crypto';
import type { TicketKind } from './kinds';
import { DeliveryHeaders, header } from './signatures';

/** The header a generic sender may set to name its delivery (stable across its retries). */
export const RCFLOW_DELIVERY_HEADER = 'x-rcflow-delivery';

export interface DeliveryKey {
  /** Where the key came from: the vendor's delivery id, or a hash of the body when it has none. */
  source: 'header' | 'event-id' | 'body-hash';
  key: string;
}

const ID = /^[\x21-\x7e]{1,200}$/;

function bodyHash(raw: Buffer): DeliveryKey {
  return { source: 'body-hash', key: createHash('sha256').update(raw).digest('hex') };
}

/**
 * What identifies one delivery, so that a redelivery is recognised: Jira's
 * `X-Atlassian-Webhook-Identifier` and GitHub's `X-GitHub-Delivery` are stable across retries,
 * Zendesk's event webhooks carry a top-level event `id`; everything else is keyed by a hash of the
 * raw body (a sender that changes nothing between retries is deduplicated; one that stamps the
 * time into the body is not, and can send `X-Rcflow-Delivery`).
 */
export function deliveryKey(kind: TicketKind, raw: Buffer, headers: DeliveryHeaders, body: unknown): DeliveryKey {
  const fromHeader = (name: string): DeliveryKey | null => {
    const value = header(headers, name)?.trim();
    return value && ID.test(value) ? { source: 'header', key: value } : null;
  };
  switch (kind) {
    case 'jira':
      return fromHeader('x-atlassian-webhook-identifier') ?? bodyHash(raw);
    case 'github':
      return fromHeader('x-github-delivery') ?? bodyHash(raw);
    case 'zendesk': {
      const id = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).id : undefined;
      return (typeof id === 'string' || typeof id === 'number') && ID.test(String(id))
        ? { source: 'event-id', key: String(id) }
        : bodyHash(raw);
    }
    case 'servicenow':
    case 'freshservice':
    case 'freshdesk':
    case 'generic':
      return fromHeader(RCFLOW_DELIVERY_HEADER) ?? bodyHash(raw);
  }
}
