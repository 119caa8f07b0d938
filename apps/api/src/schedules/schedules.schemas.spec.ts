import { createScheduleSchema, updateScheduleSchema } from './schedules.schemas';

const DEVICE = '3f1c1a4e-2d6b-4c1e-9a57-0a2b6c0d8e11';
const base = { name: 'patch night', deviceIds: [DEVICE], type: 'remote-control', access: 'full' };
const issues = (r: { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } }) =>
  (r.error?.issues ?? []).map((i) => [i.path.join('.'), i.message]);

describe('schedule bodies', () => {
  it('fills the timing defaults: startsAt now, missedPolicy skip, a 30-minute window or the time between occurrences when shorter', () => {
    const before = Date.now();
    const weekly = createScheduleSchema.parse({ ...base, timing: { cron: '0 2 * * 2', timeZone: 'Europe/Amsterdam' } });
    expect(weekly.timing).toMatchObject({ windowMinutes: 30, missedPolicy: 'skip' });
    expect(Date.parse(weekly.timing.startsAt)).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(Date.parse(weekly.timing.startsAt)).toBeLessThanOrEqual(Date.now());
    expect(createScheduleSchema.parse({ ...base, timing: { intervalMinutes: 10 } }).timing.windowMinutes).toBe(10);
    expect(createScheduleSchema.parse({ ...base, timing: { cron: '*/20 * * * *', timeZone: 'UTC' } }).timing.windowMinutes).toBe(20);
    const given = createScheduleSchema.parse({
      ...base,
      timing: { intervalMinutes: 60, windowMinutes: 45, missedPolicy: 'run_once', startsAt: '2030-01-01T00:00:00Z' },
    });
    expect(given.timing).toMatchObject({ windowMinutes: 45, missedPolicy: 'run_once', startsAt: '2030-01-01T00:00:00Z' });
  });

  it('names the field at fault', () => {
    expect(issues(createScheduleSchema.safeParse({ ...base, timing: { cron: '0 2 * * 2', timeZone: 'Nowhere/Land' } }))).toEqual([
      ['timing.timeZone', expect.stringContaining('is not an IANA time zone name')],
    ]);
    expect(issues(createScheduleSchema.safeParse({ ...base, timing: { intervalMinutes: 10, windowMinutes: 11 } }))).toEqual([
      ['timing.windowMinutes', expect.stringContaining('must not be longer than the shortest time between two occurrences')],
    ]);
    expect(issues(createScheduleSchema.safeParse({ ...base, deviceIds: [DEVICE, DEVICE], timing: { intervalMinutes: 10 } }))).toEqual([
      ['deviceIds', 'must not repeat a device'],
    ]);
    const { deviceIds: _d, ...noTarget } = base;
    expect(issues(createScheduleSchema.safeParse({ ...noTarget, timing: { intervalMinutes: 10 } }))).toEqual([
      ['deviceIds', 'is required: the devices (or give collectionId)'],
    ]);
    expect(issues(createScheduleSchema.safeParse({ ...base, askApproval: true, timing: { intervalMinutes: 10 } }))).toEqual([
      ['askApproval', 'needs remindMinutes (the user is asked with the reminder)'],
    ]);
    expect(issues(createScheduleSchema.safeParse({ ...base, timing: { intervalMinutes: 10 }, state: 'paused' }))).toEqual([
      ['', expect.stringContaining('state')],
    ]);
  });

  it('takes a patch of any field, null clearing an optional one, and refuses an empty one', () => {
    expect(updateScheduleSchema.parse({ reason: null, viewerId: null })).toEqual({ reason: null, viewerId: null });
    expect(issues(updateScheduleSchema.safeParse({}))).toEqual([['', 'names no field to change']]);
    expect(issues(updateScheduleSchema.safeParse({ deviceIds: [DEVICE], collectionId: DEVICE }))).toEqual([
      ['collectionId', 'give deviceIds or collectionId, not both'],
    ]);
  });
});
