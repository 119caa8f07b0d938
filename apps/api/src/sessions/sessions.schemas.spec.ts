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

describe('booking a session ahead (notBefore, notAfter)', () => {
  const ok = { deviceId: DEVICE, type: 'remote-control', access: 'full' };
  const at = (ms: number) => new Date(Date.now() + ms).toISOString();
  const issues = (body: object) => {
    const r = sessionRequestSchema.safeParse({ ...ok, ...body });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('takes a start ahead and a latest start after it, as Dates', () => {
    const nb = at(60_000);
    const na = at(120_000);
    expect(sessionRequestSchema.parse({ ...ok, notBefore: nb, notAfter: na })).toMatchObject({
      notBefore: new Date(nb),
      notAfter: new Date(na),
    });
    expect(sessionRequestSchema.parse({ ...ok, notBefore: nb })).not.toHaveProperty('notAfter');
    expect(sessionRequestSchema.parse(ok)).not.toHaveProperty('notBefore');
  });

  it('names the field that is wrong: past, more than a year ahead, latest start not after the start, or alone', () => {
    expect(issues({ notBefore: at(-3_600_000) })).toEqual(['notBefore: is in the past']);
    expect(issues({ notBefore: at(367 * 86_400_000) })).toEqual(['notBefore: is more than a year ahead']);
    expect(issues({ notBefore: at(60_000), notAfter: at(60_000) })).toEqual(['notAfter: must be after notBefore']);
    expect(issues({ notAfter: at(60_000) })).toEqual(['notAfter: needs notBefore (the booked start)']);
    expect(issues({ notBefore: 'tomorrow' })).toContain('notBefore: Invalid ISO datetime');
  });
});

describe('a booking that tells the user ahead (remindMinutes, askApproval)', () => {
  const ok = { deviceId: DEVICE, type: 'remote-control', access: 'full', notBefore: new Date(Date.now() + 3_600_000).toISOString() };
  const issues = (body: object) => {
    const r = sessionRequestSchema.safeParse({ ...ok, ...body });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('passes them on as the booking notice, askApproval false unless asked', () => {
    expect(sessionRequestSchema.parse({ ...ok, remindMinutes: 15, askApproval: true })).toMatchObject({
      notice: { remindMinutes: 15, askApproval: true },
    });
    expect(sessionRequestSchema.parse({ ...ok, remindMinutes: 10_080 })).toMatchObject({
      notice: { remindMinutes: 10_080, askApproval: false },
    });
    const plain = sessionRequestSchema.parse(ok);
    expect(plain).not.toHaveProperty('notice');
    expect(plain).not.toHaveProperty('remindMinutes');
  });

  it('names the field that is wrong', () => {
    expect(issues({ remindMinutes: 0 })[0]).toMatch(/^remindMinutes: /);
    expect(issues({ remindMinutes: 10_081 })[0]).toMatch(/^remindMinutes: /);
    expect(issues({ remindMinutes: 1.5 })[0]).toMatch(/^remindMinutes: /);
    expect(issues({ remindMinutes: '15' })[0]).toMatch(/^remindMinutes: /);
    expect(issues({ notBefore: undefined, remindMinutes: 15 })).toEqual([
      'remindMinutes: needs notBefore (a reminder is for a booked session)',
    ]);
    expect(issues({ askApproval: true })).toEqual(['askApproval: needs remindMinutes (the user is asked with the reminder)']);
    expect(issues({ remindMinutes: 15, askApproval: 'yes' })[0]).toMatch(/^askApproval: /);
  });
});
