import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * Seals an integration's secrets at rest with AES-256-GCM under TICKET_SECRETS_KEY. The
 * integration's id is bound in as associated data, so a sealed value copied onto another
 * integration does not open. Format: `v1.<iv>.<ciphertext>.<tag>`, base64url.
 */
export class SecretBox {
  private readonly key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error('a secret box key is 32 bytes');
    this.key = key;
  }

  seal(plaintext: string, boundTo: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(boundTo, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', iv, body, cipher.getAuthTag()].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
  }

  /** The plaintext; throws when the value was altered, sealed under another key or bound to another id. */
  open(sealed: string, boundTo: string): string {
    const [version, iv, body, tag, ...rest] = sealed.split('.');
    if (version !== 'v1' || iv === undefined || body === undefined || tag === undefined || rest.length > 0)
      throw new Error('not a sealed secret');
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(boundTo, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
  }
}
