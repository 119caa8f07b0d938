export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  /** Injected so tests can pin the jitter. */
  random?: () => number;
}

/**
 * Exponential backoff with "equal jitter": each delay lies in [ceiling/2, ceiling]. Half the
 * delay stays deterministic so a lone agent still backs off; the random half spreads a fleet
 * that lost the server at the same moment so it does not reconnect in lockstep.
 */
export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 500;
    this.maxMs = options.maxMs ?? 30_000;
    this.random = options.random ?? Math.random;
  }

  next(): number {
    // The exponent is capped so 2 ** attempt cannot overflow after a long outage.
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
