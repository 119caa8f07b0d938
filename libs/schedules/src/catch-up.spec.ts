import { EXPIRY_REASONS, planCatchUp, type CatchUpPlan } from './catch-up';
import type { CronSchedule, IntervalSchedule, MissedPolicy } from './schedule';

const hourly = (missedPolicy: MissedPolicy, extra: Partial<IntervalSchedule> = {}): IntervalSchedule => ({
  intervalMinutes: 60,
  startsAt: '2026-01-01T00:00:00Z',
  windowMinutes: 30,
  missedPolicy,
  ...extra,
});
const d = (iso: string) => new Date(iso);
/** A plan as plain text: `time decision [reason]`, to compare whole plans. */
const show = (plan: CatchUpPlan) => ({
  due: plan.due.map((o) => [o.at.toISOString().slice(11, 19), o.decision, ...(o.decision === 'expired' ? [o.reason] : [])].join(' ')),
  complete: plan.complete,
  next: plan.next?.toISOString() ?? null,
});
const { windowPassed, superseded, skipped } = EXPIRY_REASONS;

describe('planCatchUp: which occurrences are due', () => {
  it('nothing before startsAt; startsAt itself when nothing was planned yet', () => {
    expect(show(planCatchUp(hourly('run_once'), null, d('2025-12-31T23:59:59.999Z')))).toEqual({
      due: [],
      complete: true,
      next: '2026-01-01T00:00:00.000Z',
    });
    expect(show(planCatchUp(hourly('run_once'), null, d('2026-01-01T00:00:00Z')))).toEqual({
      due: ['00:00:00 run'],
      complete: true,
      next: '2026-01-01T01:00:00.000Z',
    });
  });

  it('after lastPlannedAt (exclusive), up to now (inclusive)', () => {
    expect(show(planCatchUp(hourly('run_once'), d('2026-01-01T01:00:00Z'), d('2026-01-01T02:00:00Z')))).toEqual({
      due: ['02:00:00 run'],
      complete: true,
      next: '2026-01-01T03:00:00.000Z',
    });
    expect(show(planCatchUp(hourly('run_once'), d('2026-01-01T02:00:00Z'), d('2026-01-01T02:00:00Z'))).due).toEqual([]);
    expect(show(planCatchUp(hourly('run_once'), d('2026-01-01T05:00:00Z'), d('2026-01-01T02:00:00Z'))).due).toEqual([]);
  });

  it('none after endsAt, and no next once endsAt has passed', () => {
    const spec = hourly('run_once', { endsAt: '2026-01-01T02:00:00Z' });
    expect(show(planCatchUp(spec, d('2026-01-01T01:00:00Z'), d('2026-01-01T04:10:00Z')))).toEqual({
      due: [`02:00:00 expired ${windowPassed}`],
      complete: true,
      next: null,
    });
  });
});

describe('planCatchUp: missedPolicy run_once', () => {
  it('runs the latest occurrence still inside its window, late or not; those whose window closed expire', () => {
    expect(show(planCatchUp(hourly('run_once'), d('2026-01-01T00:00:00Z'), d('2026-01-01T03:10:00Z')))).toEqual({
      due: [`01:00:00 expired ${windowPassed}`, `02:00:00 expired ${windowPassed}`, '03:00:00 run'],
      complete: true,
      next: '2026-01-01T04:00:00.000Z',
    });
  });

  it('runs an occurrence whose window ends exactly now; one a millisecond later has expired', () => {
    expect(show(planCatchUp(hourly('run_once'), d('2026-01-01T02:30:00Z'), d('2026-01-01T03:30:00Z'))).due).toEqual(['03:00:00 run']);
    expect(show(planCatchUp(hourly('run_once'), d('2026-01-01T02:30:00Z'), d('2026-01-01T03:30:00.001Z'))).due).toEqual([
      `03:00:00 expired ${windowPassed}`,
    ]);
  });

  it('runs only the latest of several occurrences inside their windows; the others are superseded', () => {
    // A window as long as the interval: at 02:00 both 01:00 (window until 02:00) and 02:00 are inside.
    const spec = hourly('run_once', { windowMinutes: 60 });
    expect(show(planCatchUp(spec, d('2026-01-01T00:00:00Z'), d('2026-01-01T02:00:00Z'))).due).toEqual([
      `01:00:00 expired ${superseded}`,
      '02:00:00 run',
    ]);
  });

  it('supersedes across a 23-hour day: a daily 02:30 with a day-long window in Europe/Amsterdam', () => {
    const spec: CronSchedule = {
      cron: '30 2 * * *',
      timeZone: 'Europe/Amsterdam',
      startsAt: '2026-03-01T00:00:00Z',
      windowMinutes: 1440,
      missedPolicy: 'run_once',
    };
    // 2026-03-29 02:30 ran at 03:30+02:00 (01:30Z); 2026-03-30 02:30+02:00 is 00:30Z, 23 hours later.
    const plan = planCatchUp(spec, d('2026-03-28T12:00:00Z'), d('2026-03-30T01:00:00Z'));
    expect(plan.due.map((o) => [o.at.toISOString(), o.decision, o.decision === 'expired' ? o.reason : ''])).toEqual([
      ['2026-03-29T01:30:00.000Z', 'expired', superseded],
      ['2026-03-30T00:30:00.000Z', 'run', ''],
    ]);
  });

  it('does not care about the grace', () => {
    expect(show(planCatchUp(hourly('run_once'), d('2026-01-01T00:30:00Z'), d('2026-01-01T01:29:00Z'), { graceSeconds: 0 })).due).toEqual([
      '01:00:00 run',
    ]);
  });
});

describe('planCatchUp: missedPolicy skip', () => {
  it('runs an occurrence at most graceSeconds late (60 by default); a later one is skipped', () => {
    const spec = hourly('skip');
    expect(show(planCatchUp(spec, d('2026-01-01T00:30:00Z'), d('2026-01-01T01:01:00Z'))).due).toEqual(['01:00:00 run']);
    expect(show(planCatchUp(spec, d('2026-01-01T00:30:00Z'), d('2026-01-01T01:01:00.001Z'))).due).toEqual([`01:00:00 expired ${skipped}`]);
    expect(show(planCatchUp(spec, d('2026-01-01T00:30:00Z'), d('2026-01-01T01:05:00Z'), { graceSeconds: 300 })).due).toEqual([
      '01:00:00 run',
    ]);
    expect(show(planCatchUp(spec, d('2026-01-01T00:30:00Z'), d('2026-01-01T01:00:00Z'), { graceSeconds: 0 })).due).toEqual([
      '01:00:00 run',
    ]);
    expect(show(planCatchUp(spec, d('2026-01-01T00:30:00Z'), d('2026-01-01T01:00:00.001Z'), { graceSeconds: 0 })).due).toEqual([
      `01:00:00 expired ${skipped}`,
    ]);
  });

  it('skips every occurrence missed during downtime, in its window or not, and runs one due within the grace', () => {
    expect(show(planCatchUp(hourly('skip'), d('2026-01-01T00:00:00Z'), d('2026-01-01T03:10:00Z')))).toEqual({
      due: [`01:00:00 expired ${skipped}`, `02:00:00 expired ${skipped}`, `03:00:00 expired ${skipped}`],
      complete: true,
      next: '2026-01-01T04:00:00.000Z',
    });
    expect(show(planCatchUp(hourly('skip'), d('2026-01-01T00:00:00Z'), d('2026-01-01T03:00:30Z'))).due).toEqual([
      `01:00:00 expired ${skipped}`,
      `02:00:00 expired ${skipped}`,
      '03:00:00 run',
    ]);
  });

  it('expires an occurrence within a grace longer than its window, as window passed', () => {
    const spec = hourly('skip', { windowMinutes: 1 });
    expect(show(planCatchUp(spec, d('2026-01-01T00:30:00Z'), d('2026-01-01T01:01:30Z'), { graceSeconds: 120 })).due).toEqual([
      `01:00:00 expired ${windowPassed}`,
    ]);
  });

  it('runs every occurrence within a grace longer than the interval', () => {
    const spec = hourly('skip', { intervalMinutes: 5, windowMinutes: 5 });
    expect(show(planCatchUp(spec, d('2026-01-01T00:00:00Z'), d('2026-01-01T00:10:00Z'), { graceSeconds: 300 })).due).toEqual([
      '00:05:00 run',
      '00:10:00 run',
    ]);
  });
});

describe('planCatchUp: at most `limit` occurrences a plan', () => {
  const every5 = (missedPolicy: MissedPolicy) => hourly(missedPolicy, { intervalMinutes: 5, windowMinutes: 5 });

  it('plans the oldest `limit` and says more are due; the plans chained equal one unlimited plan', () => {
    for (const policy of ['run_once', 'skip'] as const) {
      const now = d('2026-01-01T00:47:00Z');
      const whole = planCatchUp(every5(policy), null, now);
      expect(whole.due).toHaveLength(10);
      expect(whole.complete).toBe(true);
      const chained: CatchUpPlan['due'] = [];
      let last: Date | null = null;
      for (let round = 0; ; round++) {
        const plan = planCatchUp(every5(policy), last, now, { limit: 3 });
        expect(plan.due.length).toBe(round < 3 ? 3 : 1);
        expect(plan.complete).toBe(round === 3);
        expect(plan.next).toEqual(d('2026-01-01T00:50:00Z'));
        chained.push(...plan.due);
        if (plan.complete) break;
        last = plan.due.at(-1)!.at;
      }
      expect(chained).toEqual(whole.due);
    }
    expect(show(planCatchUp(every5('run_once'), null, d('2026-01-01T00:47:00Z'))).due.slice(-2)).toEqual([
      `00:40:00 expired ${windowPassed}`,
      '00:45:00 run',
    ]);
  });

  it('is complete when exactly `limit` are due', () => {
    const plan = planCatchUp(every5('run_once'), null, d('2026-01-01T00:10:00Z'), { limit: 3 });
    expect(show(plan)).toEqual({
      due: [`00:00:00 expired ${windowPassed}`, `00:05:00 expired ${superseded}`, '00:10:00 run'],
      complete: true,
      next: '2026-01-01T00:15:00.000Z',
    });
  });

  it('supersedes the last occurrence of an incomplete plan when the next one, in the next plan, runs', () => {
    const spec = hourly('run_once', { windowMinutes: 60 });
    const first = planCatchUp(spec, d('2026-01-01T00:00:00Z'), d('2026-01-01T02:00:00Z'), { limit: 1 });
    expect(show(first)).toEqual({ due: [`01:00:00 expired ${superseded}`], complete: false, next: '2026-01-01T03:00:00.000Z' });
    expect(show(planCatchUp(spec, first.due[0].at, d('2026-01-01T02:00:00Z'), { limit: 1 })).due).toEqual(['02:00:00 run']);
  });

  it('refuses a limit below 1 and a negative or NaN grace', () => {
    const spec = hourly('skip');
    expect(() => planCatchUp(spec, null, d('2026-01-02T00:00:00Z'), { limit: 0 })).toThrow('limit must be a whole number >= 1, got 0');
    expect(() => planCatchUp(spec, null, d('2026-01-02T00:00:00Z'), { limit: 2.5 })).toThrow(RangeError);
    expect(() => planCatchUp(spec, null, d('2026-01-02T00:00:00Z'), { graceSeconds: -1 })).toThrow('graceSeconds must be >= 0, got -1');
    expect(() => planCatchUp(spec, null, d('2026-01-02T00:00:00Z'), { graceSeconds: NaN })).toThrow(RangeError);
  });
});
