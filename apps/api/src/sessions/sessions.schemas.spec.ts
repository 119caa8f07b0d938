import { cancelSchema, sessionRequestSchema } from './sessions.schemas';

const DEVICE = '00000000-0000-4000-8000-0000000000d1';

describe('session request schema', () => {
  const ok = { deviceId: DEVICE, type: 'remote-control', access: 'full' };

  it('refuses NUL characters in free text, which PostgreSQL cannot store', () => {
    expect(sessionRequestSchema.safeParse({ ...ok, reason: 'printer' }).success).toBe(true);
    expect(sessionRequestSchema.safeParse({ ...ok, reason: 'a\u0000b' }).success).toBe(false);
    expect(sessionRequestSchema.safeParse({ ...ok, ticketRef: 'INC\u0000' }).success).toBe(false);
    expect(cancelSchema.safeParse({ reason: '\u0000x' }).success).toBe(false);
  });
});
