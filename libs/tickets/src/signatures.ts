import { createHmac, timingSafeEqual } from 'node:crypto';
import type { TicketKind } from './kinds';

/** Request headers as Node gives them: names in lower case. */
export type DeliveryHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** How a delivery proves where it comes from. */
export type InboundAuth = 'hmac' | 'token';

export type SignatureVerdict =
  | { ok: true; /** Which of the integration's active secrets signed it (rotation). */ secretIndex: number }
  | { ok: false; reason: 'missing' | 'malformed' | 'mismatch' | 'stale'; detail: string };

/** How far a signed timestamp may be from now (Zendesk's documented window, used for ours too). */
export const TIMESTAMP_TOLERANCE_MS = 5 * 60_000;

/** rcflow's own scheme, for systems without a standard (ServiceNow, Freshworks, generic). */
export const RCFLOW_SIGNATURE_HEADER = 'x-rcflow-signature';
export const RCFLOW_TIMESTAMP_HEADER = 'x-rcflow-timestamp';
export const RCFLOW_TOKEN_HEADER = 'x-rcflow-token';

export function header(headers: DeliveryHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function hmac(secret: string, ...parts: (string | Buffer)[]): Buffer {
  const mac = createHmac('sha256', secret);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

/** Constant-time: every secret is compared, whether or not an earlier one matched. */
function firstMatch(candidate: Buffer, expected: Buffer[]): number {
  let found = -1;
  expected.forEach((digest, i) => {
    const same = digest.length === candidate.length && timingSafeEqual(digest, candidate);
    if (same && found < 0) found = i;
  });
  return found;
}

/** `sha256=<hex>` (GitHub, Jira) → the digest bytes; null when malformed. */
function hexDigest(value: string): Buffer | null {
  const m = /^sha256=([0-9a-fA-F]{64})$/.exec(value.trim());
  return m?.[1] ? Buffer.from(m[1], 'hex') : null;
}

/** `sha256=<hex>` or `sha256=<base64>` (ServiceNow's generateMac answers base64). */
function hexOrBase64Digest(value: string): Buffer | null {
  const hex = hexDigest(value);
  if (hex) return hex;
  const m = /^sha256=([A-Za-z0-9+/]{43}=)$/.exec(value.trim());
  return m?.[1] ? Buffer.from(m[1], 'base64') : null;
}

function missing(name: string): SignatureVerdict {
  return { ok: false, reason: 'missing', detail: `the ${name} header is missing` };
}

function verdict(index: number, what: string): SignatureVerdict {
  return index >= 0
    ? { ok: true, secretIndex: index }
    : { ok: false, reason: 'mismatch', detail: `the ${what} does not match any active secret of this integration` };
}

function fresh(signedAtMs: number, nowMs: number, name: string): SignatureVerdict | null {
  if (!Number.isFinite(signedAtMs)) return { ok: false, reason: 'malformed', detail: `the ${name} header is not a timestamp` };
  if (Math.abs(nowMs - signedAtMs) > TIMESTAMP_TOLERANCE_MS)
    return { ok: false, reason: 'stale', detail: `the ${name} header is more than 5 minutes from the server's clock` };
  return null;
}

/** GitHub `X-Hub-Signature-256` and Jira `X-Hub-Signature`: `sha256=` + hex HMAC-SHA256 of the raw body. */
function verifyHubSignature(name: string, raw: Buffer, headers: DeliveryHeaders, secrets: readonly string[]): SignatureVerdict {
  const value = header(headers, name);
  if (value === undefined) return missing(name);
  const digest = hexDigest(value);
  if (!digest) return { ok: false, reason: 'malformed', detail: `the ${name} header is not sha256=<64 hex digits>` };
  return verdict(
    firstMatch(
      digest,
      secrets.map((s) => hmac(s, raw)),
    ),
    name,
  );
}

/** Zendesk: base64 HMAC-SHA256 (key: the signing secret as text) of the timestamp header + the raw body. */
export function zendeskSignature(secret: string, timestamp: string, raw: Buffer): string {
  return hmac(secret, timestamp, raw).toString('base64');
}

function verifyZendesk(raw: Buffer, headers: DeliveryHeaders, secrets: readonly string[], nowMs: number): SignatureVerdict {
  const sigName = 'x-zendesk-webhook-signature';
  const tsName = 'x-zendesk-webhook-signature-timestamp';
  const signature = header(headers, sigName);
  const timestamp = header(headers, tsName);
  if (signature === undefined) return missing(sigName);
  if (timestamp === undefined) return missing(tsName);
  if (!/^[A-Za-z0-9+/]{43}=$/.test(signature.trim()))
    return { ok: false, reason: 'malformed', detail: `the ${sigName} header is not a base64 SHA-256 digest` };
  // The signature is checked before the clock: a forged request learns nothing from "stale".
  const matched = verdict(
    firstMatch(
      Buffer.from(signature.trim(), 'base64'),
      secrets.map((s) => hmac(s, timestamp, raw)),
    ),
    sigName,
  );
  if (!matched.ok) return matched;
  return fresh(Date.parse(timestamp), nowMs, tsName) ?? matched;
}

/** rcflow's scheme: `X-Rcflow-Signature: sha256=<hex or base64 HMAC-SHA256 of "<timestamp>.<raw body>">`, `X-Rcflow-Timestamp: <unix seconds>`. */
export function rcflowSignature(secret: string, timestampSeconds: string, raw: Buffer): string {
  return `sha256=${hmac(secret, `${timestampSeconds}.`, raw).toString('hex')}`;
}

function verifyRcflowHmac(raw: Buffer, headers: DeliveryHeaders, secrets: readonly string[], nowMs: number): SignatureVerdict {
  const signature = header(headers, RCFLOW_SIGNATURE_HEADER);
  const timestamp = header(headers, RCFLOW_TIMESTAMP_HEADER);
  if (signature === undefined) return missing(RCFLOW_SIGNATURE_HEADER);
  if (timestamp === undefined) return missing(RCFLOW_TIMESTAMP_HEADER);
  if (!/^\d{1,12}$/.test(timestamp.trim()))
    return { ok: false, reason: 'malformed', detail: `the ${RCFLOW_TIMESTAMP_HEADER} header is not unix seconds` };
  const digest = hexOrBase64Digest(signature);
  if (!digest)
    return { ok: false, reason: 'malformed', detail: `the ${RCFLOW_SIGNATURE_HEADER} header is not sha256=<hex or base64 digest>` };
  const ts = timestamp.trim();
  const matched = verdict(
    firstMatch(
      digest,
      secrets.map((s) => hmac(s, `${ts}.`, raw)),
    ),
    RCFLOW_SIGNATURE_HEADER,
  );
  if (!matched.ok) return matched;
  return fresh(Number(ts) * 1000, nowMs, RCFLOW_TIMESTAMP_HEADER) ?? matched;
}

/** A shared secret sent as is (for automations that cannot compute an HMAC); compared in constant time. */
function verifyToken(headers: DeliveryHeaders, secrets: readonly string[]): SignatureVerdict {
  const token = header(headers, RCFLOW_TOKEN_HEADER);
  if (token === undefined) return missing(RCFLOW_TOKEN_HEADER);
  // Compare digests, so that the lengths are equal and nothing leaks through them.
  return verdict(
    firstMatch(
      hmac('rcflow-token', token),
      secrets.map((s) => hmac('rcflow-token', s)),
    ),
    RCFLOW_TOKEN_HEADER,
  );
}

/**
 * Checks that a delivery was sent by the integration's ticket system, on the raw bytes received.
 * Jira, GitHub and Zendesk use their own schemes; the others use rcflow's HMAC scheme or, when
 * the integration allows it, a shared-secret header.
 */
export function verifyDelivery(
  kind: TicketKind,
  auth: InboundAuth,
  raw: Buffer,
  headers: DeliveryHeaders,
  secrets: readonly string[],
  nowMs: number,
): SignatureVerdict {
  if (secrets.length === 0) return { ok: false, reason: 'mismatch', detail: 'this integration has no active secret' };
  switch (kind) {
    case 'jira':
      return verifyHubSignature('x-hub-signature', raw, headers, secrets);
    case 'github':
      return verifyHubSignature('x-hub-signature-256', raw, headers, secrets);
    case 'zendesk':
      return verifyZendesk(raw, headers, secrets, nowMs);
    case 'servicenow':
    case 'freshservice':
    case 'freshdesk':
    case 'generic':
      return auth === 'token' ? verifyToken(headers, secrets) : verifyRcflowHmac(raw, headers, secrets, nowMs);
  }
}
