import { createHash } from 'crypto';
import { canonicalJson } from './settings';
import { IdempotentSessionRequest, idempotencyRequestHash } from './idempotency';

const base: IdempotentSessionRequest = {
  deviceId: '00000000-0000-4000-8000-000000000001',
  viewerId: '00000000-0000-4000-8000-0000000000a1',
  type: 'remote-control',
  access: 'full',
  reason: 'printer driver',
  ticketRef: 'INC-1',
  notBefore: '2026-12-01T14:00:00.000Z',
  notAfter: '2026-12-01T14:30:00.000Z',
};

describe('idempotencyRequestHash', () => {
  it('is the SHA-256 of the canonical JSON of the request, as intake has always stored it', () => {
    expect(idempotencyRequestHash(base)).toBe(createHash('sha256').update(canonicalJson(base)).digest('hex'));
    expect(idempotencyRequestHash(base)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('does not depend on key order, and treats an undefined field as absent', () => {
    const reversed = Object.fromEntries(Object.entries(base).reverse()) as unknown as IdempotentSessionRequest;
    expect(idempotencyRequestHash(reversed)).toBe(idempotencyRequestHash(base));
    const { reason: _reason, ...withoutReason } = base;
    expect(idempotencyRequestHash({ ...withoutReason, reason: undefined })).toBe(idempotencyRequestHash(withoutReason));
  });

  // Every field, changed alone, gives another hash: the same key with it is a conflict, never a replay.
  const changes: [keyof IdempotentSessionRequest, Partial<IdempotentSessionRequest>][] = [
    ['deviceId', { deviceId: '00000000-0000-4000-8000-000000000002' }],
    ['viewerId', { viewerId: '00000000-0000-4000-8000-0000000000a2' }],
    ['type', { type: 'remote-assistance' }],
    ['access', { access: 'view' }],
    ['reason', { reason: 'printer driver!' }],
    ['reason', { reason: undefined }],
    ['ticketRef', { ticketRef: 'INC-2' }],
    ['ticketRef', { ticketRef: undefined }],
    ['notBefore', { notBefore: '2026-12-01T14:00:01.000Z' }],
    ['notBefore', { notBefore: undefined }],
    ['notAfter', { notAfter: '2026-12-01T15:00:00.000Z' }],
    ['notAfter', { notAfter: undefined }],
  ];
  it.each(changes)('changes when %s changes (%j)', (_field, change) => {
    expect(idempotencyRequestHash({ ...base, ...change })).not.toBe(idempotencyRequestHash(base));
  });

  it('covers every field of the request (a field added to the type must be added to the cases above)', () => {
    expect(new Set(changes.map(([field]) => field))).toEqual(new Set(Object.keys(base)));
  });

  it('does not let a value move between fields unnoticed', () => {
    const a = idempotencyRequestHash({ ...base, reason: 'INC-1', ticketRef: undefined });
    const b = idempotencyRequestHash({ ...base, reason: undefined, ticketRef: 'INC-1' });
    expect(a).not.toBe(b);
  });
});
