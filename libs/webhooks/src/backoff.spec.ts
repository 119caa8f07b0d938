import { retryDelayMs } from './backoff';

describe('retry backoff', () => {
  it('doubles from the base per attempt, between half and all of the step', () => {
    const base = 1000;
    const cap = 3_600_000;
    expect([1, 2, 3, 4, 5].map((a) => retryDelayMs(a, base, cap, 0))).toEqual([500, 1000, 2000, 4000, 8000]);
    expect([1, 2, 3, 4, 5].map((a) => retryDelayMs(a, base, cap, 0.999999))).toEqual([1000, 2000, 4000, 8000, 16000]);
    expect(retryDelayMs(3, base, cap, 0.5)).toBe(3000);
  });

  it('never waits longer than the cap, however many attempts', () => {
    for (const attempt of [13, 20, 100, 10_000]) {
      expect(retryDelayMs(attempt, 5000, 3_600_000, 0.999999)).toBeLessThanOrEqual(3_600_000);
      expect(retryDelayMs(attempt, 5000, 3_600_000, 0)).toBe(1_800_000);
    }
  });

  it('spreads retries: random values give different delays', () => {
    expect(new Set([0, 0.25, 0.5, 0.75].map((r) => retryDelayMs(4, 1000, 3_600_000, r))).size).toBe(4);
  });
});
