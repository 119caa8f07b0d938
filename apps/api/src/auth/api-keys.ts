import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const KEY_PATTERN = /^rcf_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.([A-Za-z0-9_-]{43})$/;

/** A fresh secret and the hash stored for it; the secret is shown once and never stored. */
export function newKeySecret(): { secret: string; hash: string } {
  const secret = randomBytes(32).toString('base64url');
  return { secret, hash: hashSecret(secret) };
}

/** Keys carry 256 random bits, so a plain SHA-256 resists guessing; no slow hash needed. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function formatKey(id: string, secret: string): string {
  return `rcf_${id}.${secret}`;
}

export function parseKey(raw: string): { id: string; secret: string } | null {
  const m = KEY_PATTERN.exec(raw);
  return m ? { id: m[1]!, secret: m[2]! } : null;
}

export function secretMatches(secret: string, storedHash: string): boolean {
  return digestMatches(secret, Buffer.from(storedHash, 'hex'));
}

/** secretMatches against the stored hash already decoded (what a cache keeps). Constant time. */
export function digestMatches(secret: string, storedDigest: Buffer): boolean {
  const digest = createHash('sha256').update(secret).digest();
  return digest.length === storedDigest.length && timingSafeEqual(digest, storedDigest);
}
