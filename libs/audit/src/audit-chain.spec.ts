import { ChainedEvent, GENESIS_HASH, eventHash, sessionStream, sessionStreamSql } from './audit-chain';

const base: ChainedEvent = {
  stream: 'session:1',
  seq: 1,
  occurredAt: new Date('2026-11-24T10:00:00.000Z'),
  actorId: null,
  actorKind: 'system',
  action: 'session.validating',
  outcome: 'validating',
  sessionId: '1',
  deviceId: null,
  viewerId: null,
  ticketRef: null,
  reason: null,
  data: { b: 1, a: [2, 3] },
  prevHash: GENESIS_HASH,
};

describe('eventHash', () => {
  it('is stable for the same event whatever the key order of its data', () => {
    expect(eventHash('k', base)).toBe(eventHash('k', { ...base, data: { a: [2, 3], b: 1 } }));
    expect(eventHash('k', base)).toMatch(/^[0-9a-f]{64}$/);
  });

  it.each<[string, Partial<ChainedEvent>]>([
    ['stream', { stream: 'session:2' }],
    ['seq', { seq: 2 }],
    ['time', { occurredAt: new Date('2026-11-24T10:00:00.001Z') }],
    ['actor', { actorId: 'x' }],
    ['actor kind', { actorKind: 'principal' }],
    ['session', { sessionId: '2' }],
    ['action', { action: 'session.eligible' }],
    ['outcome', { outcome: 'eligible' }],
    ['device', { deviceId: 'd' }],
    ['viewer', { viewerId: 'v' }],
    ['ticket', { ticketRef: 'INC1' }],
    ['reason', { reason: 'r' }],
    ['data', { data: { b: 2, a: [2, 3] } }],
    ['previous hash', { prevHash: '1'.repeat(64) }],
  ])('changes when the %s changes', (_, change) => {
    expect(eventHash('k', { ...base, ...change })).not.toBe(eventHash('k', base));
  });

  it('depends on the key', () => {
    expect(eventHash('k1', base)).not.toBe(eventHash('k2', base));
  });
});

describe('sessionStream', () => {
  // Appends chain a session's events under sessionStream(id); reads and the sweep join
  // audit_stream_heads on sessionStreamSql(column): both must name the same stream.
  it('names a session stream "session:<id>", in TypeScript and as SQL over an id column', () => {
    expect(sessionStream('0f3c')).toBe('session:0f3c');
    expect(sessionStreamSql('s.id')).toBe("'session:' || s.id");
  });
});
