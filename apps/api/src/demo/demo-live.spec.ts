import type { AuditItem } from '@rcflow/audit';
import { liveLine } from './demo-live';

const world = {
  devices: { ws1: 'd-ws1', ws2: 'd-ws2', ws3: 'd-ws3', demoPc: 'd-demo-pc' },
  principals: { admin: 'p-admin', alice: 'p-alice', bob: 'p-bob' },
};
const event = (over: Partial<AuditItem>): AuditItem => ({
  id: '1',
  stream: 'session:5a1e0000-0000-4000-8000-000000000000',
  seq: 1,
  occurredAt: '2026-11-29T10:11:12.000Z',
  actor: { id: null, kind: 'system' },
  action: 'session.active',
  outcome: 'active',
  sessionId: '5a1e0000-0000-4000-8000-000000000000',
  deviceId: 'd-ws1',
  viewerId: 'p-alice',
  ticketRef: null,
  reason: null,
  data: {},
  hash: 'h',
  ...over,
});

describe('the demo live line', () => {
  it('names the demo device and viewer, the state, the session and how consent was given', () => {
    const line = liveLine(event({ data: { consent: 'prompt' } }), world);
    expect(line).toMatch(/^ {2}\d\d:\d\d:\d\d {2}WS-1 +active +alice +session 5a1e0000 \(consent: prompt\)$/);
  });

  it('says why a session was refused, and shortens ids it has no name for', () => {
    const line = liveLine(
      event({ outcome: 'rejected', deviceId: 'feedbeef-0000', viewerId: 'cafe0000-1111', reason: 'not a permitted viewer' }),
      world,
    );
    expect(line).toContain('feedbeef rejected');
    expect(line).toContain('cafe0000 session 5a1e0000 — not a permitted viewer');
  });
});
