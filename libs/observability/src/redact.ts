/**
 * Redaction of logged objects by key name: whatever a log line carries (headers, a body, an
 * error's fields, a job's data), a value under a key named like a credential is replaced. Names,
 * not paths, because a secret can sit at any depth and under many spellings (`authorization`,
 * `x-hub-signature-256`, `webhookSecret`, `viewerToken`, `apiKey`, `password`, `key`).
 */

/** Key names whose values are never logged: credentials, signatures, cookies. */
const SECRET_WORD = /secret|token|passw(?:or)?d|passphrase|authorization|cookie|signature|credential|api[-_]?key|private/i;
/** `key`, `x-api-key`, `hmac_key`, and camelCase `…Key` (apiKey, hmacKey) — but not `keyId` or `monkey`. */
const KEY_NAME = /(?:^|[-_.])key$/i;
const CAMEL_KEY = /[a-z0-9]Key$/;

export const REDACTED = '[redacted]';

/** Whether a value under this key name is a secret. */
export function isSecretKey(name: string): boolean {
  return SECRET_WORD.test(name) || KEY_NAME.test(name) || CAMEL_KEY.test(name);
}

const MAX_DEPTH = 8;

function isPlain(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  // Any realm's Object.prototype (Node's own objects, like request headers, come from another one under jest).
  const proto = Object.getPrototypeOf(value) as object | null;
  return proto === null || Object.getPrototypeOf(proto) === null;
}

/**
 * `value` with every secret-named key's value replaced by {@link REDACTED}, at any depth (plain
 * objects, arrays and Errors' own fields). Copies only what it changes: a line without secrets is
 * returned as it came, at the cost of one test per key.
 */
export function redactSecrets<T>(value: T, depth = 0): T {
  if (depth > MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | null = null;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const red = redactSecrets(item, depth + 1);
      if (red !== item) (out ??= [...(value as unknown[])])[i] = red;
    }
    return (out ?? value) as T;
  }
  if (value instanceof Error) {
    // Errors are serialized with their own enumerable fields (a client error's config and headers among them).
    const fields = Object.keys(value);
    if (fields.length === 0) return value;
    const copy: Record<string, unknown> = {};
    let changed = false;
    for (const k of fields) {
      const v = (value as unknown as Record<string, unknown>)[k];
      const red = isSecretKey(k) ? REDACTED : redactSecrets(v, depth + 1);
      if (red !== v) changed = true;
      copy[k] = red;
    }
    if (!changed) return value;
    const clone = Object.assign(Object.create(Object.getPrototypeOf(value) as object) as Error, copy);
    clone.message = value.message;
    clone.stack = value.stack;
    return clone as T;
  }
  if (!isPlain(value)) return value;
  let out: Record<string, unknown> | null = null;
  for (const k in value) {
    const v = value[k];
    const red = isSecretKey(k) ? (v === undefined || v === null ? v : REDACTED) : redactSecrets(v, depth + 1);
    if (red !== v) (out ??= { ...value })[k] = red;
  }
  return (out ?? value) as T;
}
