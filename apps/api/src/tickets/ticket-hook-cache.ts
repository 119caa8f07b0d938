import { performance } from 'node:perf_hooks';

/**
 * A small per-process cache for the webhook's hot path: an entry lives `ttlMs` (on the monotonic
 * clock unless another is given) and at most `maxSize` entries are kept, the least recently used going first, so that no
 * sender can grow it. Concurrent misses of one key share one load (`getOrLoad`).
 */
export class TtlLru<K, V> {
  private readonly entries = new Map<K, { value: V; until: number }>();
  private readonly loading = new Map<K, Promise<V>>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxSize: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    if (entry.until <= this.now()) return undefined;
    this.entries.set(key, entry); // Map order is use order: the first key is the least recently used
    return entry.value;
  }

  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, { value, until: this.now() + this.ttlMs });
    while (this.entries.size > this.maxSize) this.entries.delete(this.entries.keys().next().value as K);
  }

  delete(key: K): void {
    this.entries.delete(key);
    this.loading.delete(key);
  }

  /** The cached value, or the value `load` answers (kept); one load at a time per key. */
  async getOrLoad(key: K, load: () => Promise<V>): Promise<V> {
    const cached = this.get(key);
    if (cached !== undefined) return cached;
    let pending = this.loading.get(key);
    if (!pending) {
      const p = load().then((value) => {
        // Kept only if nobody dropped the key while it loaded.
        if (this.loading.get(key) === p) this.set(key, value);
        return value;
      });
      pending = p;
      this.loading.set(key, p);
      void p.then(
        () => this.loading.get(key) === p && this.loading.delete(key),
        () => this.loading.get(key) === p && this.loading.delete(key),
      );
    }
    return pending;
  }

  get size(): number {
    return this.entries.size;
  }
}
