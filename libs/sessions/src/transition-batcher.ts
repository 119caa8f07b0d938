import type { EntityManager } from 'typeorm';
import { applyTransitionBatch } from './transition-statement';
import { observeCommitted } from './transition-observer';
import type { TransitionRequest, TransitionResult } from './transition';

export interface TransitionBatcherOptions {
  /** Requests per statement; 1 sends every request alone. */
  max: number;
  /** How long the first waiting request waits for others. */
  waitMs: number;
}

interface Waiting {
  req: TransitionRequest;
  resolve: (result: TransitionResult | null) => void;
  reject: (err: unknown) => void;
}

/**
 * Collects transitions from concurrent callers and commits them in one statement
 * (`applyTransitionBatch`), resolving each caller with its own result once the batch committed
 * (and logging and counting what committed, see observeCommitted).
 * When the batch fails, each request runs again alone, so an error belongs only to the request that
 * causes it. A second request for a session already waiting runs alone at once.
 */
export class TransitionBatcher {
  private waiting: Waiting[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly manager: EntityManager,
    private readonly auditKey: string,
    private readonly options: TransitionBatcherOptions,
  ) {}

  apply(req: TransitionRequest): Promise<TransitionResult | null> {
    if (this.options.max <= 1 || this.waiting.some((w) => w.req.session.id === req.session.id)) return this.one(req);
    return new Promise((resolve, reject) => {
      this.waiting.push({ req, resolve, reject });
      if (this.waiting.length >= this.options.max) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.options.waitMs);
    });
  }

  /** Sends what is waiting now. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.waiting;
    this.waiting = [];
    if (batch.length > 0) void this.send(batch);
  }

  private async one(req: TransitionRequest): Promise<TransitionResult | null> {
    const results = await applyTransitionBatch(this.manager, this.auditKey, [req]);
    observeCommitted([req], results);
    return results[0] ?? null;
  }

  private async send(batch: Waiting[]): Promise<void> {
    if (batch.length === 1) return this.alone(batch[0]!);
    let results: (TransitionResult | null)[];
    const reqs = batch.map((w) => w.req);
    try {
      results = await applyTransitionBatch(this.manager, this.auditKey, reqs);
    } catch {
      // Nothing of the batch applied: each request on its own gets its own result or error.
      await Promise.all(batch.map((w) => this.alone(w)));
      return;
    }
    observeCommitted(reqs, results);
    batch.forEach((w, i) => w.resolve(results[i] ?? null));
  }

  private async alone(w: Waiting): Promise<void> {
    try {
      w.resolve(await this.one(w.req));
    } catch (err) {
      w.reject(err);
    }
  }
}
