import { createHmac } from 'node:crypto';
import type { TicketKind } from '../kinds';
import { RCFLOW_SIGNATURE_HEADER, RCFLOW_TIMESTAMP_HEADER, rcflowSignature, zendeskSignature } from '../signatures';

/**
 * The headers a ticket system sends with a delivery, signed as it signs (for tests and examples):
 * Jira `X-Hub-Signature` + `X-Atlassian-Webhook-Identifier`; GitHub `X-Hub-Signature-256` +
 * `X-GitHub-Delivery` + `X-GitHub-Event: issues`; Zendesk's signature over timestamp + body; the
 * others rcflow's timestamped HMAC, as the README's ServiceNow script and Freshworks automation send it.
 */
export function signedHeaders(kind: TicketKind, secret: string, raw: Buffer, delivery: string, nowMs = Date.now()): Record<string, string> {
  const hex = () => `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;
  const ts = String(Math.floor(nowMs / 1000));
  const json = { 'content-type': 'application/json' };
  switch (kind) {
    case 'jira':
      return { ...json, 'x-atlassian-webhook-identifier': delivery, 'x-hub-signature': hex() };
    case 'github':
      return { ...json, 'x-github-delivery': delivery, 'x-github-event': 'issues', 'x-hub-signature-256': hex() };
    case 'zendesk':
      return {
        ...json,
        'x-zendesk-webhook-signature-timestamp': new Date(nowMs).toISOString(),
        'x-zendesk-webhook-signature': zendeskSignature(secret, new Date(nowMs).toISOString(), raw),
      };
    case 'servicenow':
    case 'freshservice':
    case 'freshdesk':
    case 'generic':
      return { ...json, [RCFLOW_TIMESTAMP_HEADER]: ts, [RCFLOW_SIGNATURE_HEADER]: rcflowSignature(secret, ts, raw) };
  }
}
