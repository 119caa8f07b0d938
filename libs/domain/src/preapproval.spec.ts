import { answerVerdict, asksApproval, preapprovalFor, type Approval, type GrantedNotice, type NoticeForAnswer } from './preapproval';

const DEVICE = 'device-1';
const end = new Date('2026-12-01T02:30:00Z');
const notice = (approval: Approval, state = 'delivered'): NoticeForAnswer => ({ deviceId: DEVICE, state, approval, windowEnd: end });
const before = new Date('2026-12-01T01:00:00Z');

describe('answerVerdict: the user answers a notice from the device', () => {
  it.each([
    ['pending', 'granted'],
    ['pending', 'denied'],
    ['granted', 'revoked'],
  ] as const)('applies %s → %s before the window ends', (from, decision) => {
    expect(answerVerdict(notice(from), DEVICE, decision, before)).toEqual({ apply: true });
  });

  it('counts a revoke after the window opened, up to its end', () => {
    expect(answerVerdict(notice('granted'), DEVICE, 'revoked', end)).toEqual({ apply: true });
  });

  it('accepts an answer to a notice not yet marked delivered (the answer can overtake the ack)', () => {
    expect(answerVerdict(notice('pending', 'planned'), DEVICE, 'granted', before)).toEqual({ apply: true });
  });

  it('treats the same answer again as a repeat, not a refusal', () => {
    expect(answerVerdict(notice('granted'), DEVICE, 'granted', before)).toEqual({ apply: false, repeat: true });
  });

  it.each<[string, NoticeForAnswer | null, string, 'granted' | 'denied' | 'revoked', Date, RegExp]>([
    ['an unknown notice', null, DEVICE, 'granted', before, /no such notice/],
    ["another device's notice", notice('pending'), 'device-2', 'granted', before, /no such notice/],
    ['a notice that did not ask', notice('not_asked'), DEVICE, 'granted', before, /did not ask/],
    ['a cancelled notice', notice('pending', 'cancelled'), DEVICE, 'granted', before, /cancelled/],
    ['an answer after the window', notice('pending'), DEVICE, 'granted', new Date(end.getTime() + 1), /window ended/],
    ['a revoke after the window', notice('granted'), DEVICE, 'revoked', new Date(end.getTime() + 1), /window ended/],
    ['a revoke of a pending ask', notice('pending'), DEVICE, 'revoked', before, /cannot be revoked when it is pending/],
    ['a grant after a denial', notice('denied'), DEVICE, 'granted', before, /cannot be granted when it is denied/],
    ['a grant after a revoke', notice('revoked'), DEVICE, 'granted', before, /cannot be granted when it is revoked/],
    ['a denial after a grant', notice('granted'), DEVICE, 'denied', before, /cannot be denied when it is granted/],
  ])('refuses %s', (_, n, device, decision, now, reason) => {
    const v = answerVerdict(n, device, decision, now);
    expect(v).toMatchObject({ apply: false, repeat: false });
    expect((v as { refused: string }).refused).toMatch(reason);
  });
});

describe('asksApproval', () => {
  it('asks only when the booking asks and the device would prompt', () => {
    expect(asksApproval(true, true, 'remote-control')).toBe(true);
    expect(asksApproval(true, false, 'remote-control')).toBe(false);
    expect(asksApproval(true, false, 'remote-assistance')).toBe(true);
    expect(asksApproval(false, true, 'remote-control')).toBe(false);
  });
});

describe('preapprovalFor: the consent step', () => {
  const start = new Date('2026-12-01T02:00:00Z');
  const granted: GrantedNotice = { id: 'n1', approval: 'granted', answeredBy: 'carol', windowStart: start, windowEnd: end };
  const inside = new Date('2026-12-01T02:10:00Z');

  it('uses a granted notice whose window covers now, edges included', () => {
    expect(preapprovalFor('prompt_user', [granted], inside)).toBe(granted);
    expect(preapprovalFor('prompt_user', [granted], start)).toBe(granted);
    expect(preapprovalFor('prompt_user', [granted], end)).toBe(granted);
  });

  it('keeps the normal rules outside the window', () => {
    expect(preapprovalFor('prompt_user', [granted], new Date(start.getTime() - 1))).toBeNull();
    expect(preapprovalFor('prompt_user', [granted], new Date(end.getTime() + 1))).toBeNull();
  });

  it.each<Approval>(['revoked', 'denied', 'pending', 'not_asked'])('ignores a notice %s', (approval) => {
    expect(preapprovalFor('prompt_user', [{ ...granted, approval }], inside)).toBeNull();
  });

  it.each(['unattended_allowed', 'not_required', 'refused'] as const)('applies only where the user would be prompted, not %s', (rule) => {
    expect(preapprovalFor(rule, [granted], inside)).toBeNull();
  });

  it('finds the granted one among several', () => {
    const revoked = { ...granted, id: 'n0', approval: 'revoked' as const };
    expect(preapprovalFor('prompt_user', [revoked, granted], inside)?.id).toBe('n1');
    expect(preapprovalFor('prompt_user', [], inside)).toBeNull();
  });
});
