/**
 * How long to wait before attempt `attempt + 1` after attempt `attempt` (1-based) failed:
 * `baseMs` doubled per attempt, capped at `capMs`, with "equal jitter" (half fixed, half random) so
 * that many deliveries failing at once do not retry in step. `random` is in [0, 1).
 */
export function retryDelayMs(attempt: number, baseMs: number, capMs: number, random: number = Math.random()): number {
  const exponential = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 40));
  return Math.round(exponential / 2 + (exponential / 2) * Math.min(Math.max(random, 0), 1));
}
