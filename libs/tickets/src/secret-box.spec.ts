import { randomBytes } from 'node:crypto';
import { SecretBox } from './secret-box';

describe('SecretBox', () => {
  const box = new SecretBox(randomBytes(32));

  it('opens what it sealed, and never shows the plaintext in the sealed form', () => {
    const sealed = box.seal('jira-api-token ☃', 'integration-1');
    expect(sealed).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(sealed).not.toContain('jira');
    expect(box.open(sealed, 'integration-1')).toBe('jira-api-token ☃');
    expect(box.seal('x', 'i')).not.toBe(box.seal('x', 'i'));
  });
  it('refuses a value bound to another integration, sealed under another key, or altered', () => {
    const sealed = box.seal('secret', 'integration-1');
    expect(() => box.open(sealed, 'integration-2')).toThrow();
    expect(() => new SecretBox(randomBytes(32)).open(sealed, 'integration-1')).toThrow();
    const [v, iv, body, tag] = sealed.split('.');
    const flipped = Buffer.from(body, 'base64url');
    flipped[0] ^= 1;
    expect(() => box.open([v, iv, flipped.toString('base64url'), tag].join('.'), 'integration-1')).toThrow();
    expect(() => box.open('v2.a.b.c', 'integration-1')).toThrow('not a sealed secret');
  });
  it('takes only a 32-byte key', () => {
    expect(() => new SecretBox(randomBytes(16))).toThrow();
  });
});
