interface Pending<T, R> {
  item: T;
  resolve(result: R): void;
  reject(err: unknown): void;
}

/**
 * Sends concurrent requests of one kind to PostgreSQL together. A request goes out on the next
 * turn of the event loop with whatever else arrived meanwhile; while `maxInFlight` statements are
 * out, requests wait and leave together as soon as one returns. Under light load nothing waits;
 * under load one statement (and one commit) serves many requests, which is most of the cost of each.
 *
 * `run` answers for each item, in order; an item it leaves unanswered (undefined) fails alone,
 * with `what` naming it. Requests sent together succeed or fail together; none is answered before
 * its statement returns. When a statement of several fails, each of its requests is sent again
 * alone (nothing was written), so one request that PostgreSQL refuses fails alone.
 */
export class StatementBatcher<T, R> {
  private queue: Pending<T, R>[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly run: (items: T[]) => Promise<(R | undefined)[]>,
    private readonly maxInFlight: number,
    private readonly maxBatch: number,
    private readonly what: (item: T) => string,
  ) {}

  submit(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.inFlight++;
      void this.send(batch).finally(() => {
        this.inFlight--;
        if (this.queue.length > 0) this.schedule();
      });
    }
  }

  private async send(batch: Pending<T, R>[]): Promise<void> {
    let results: (R | undefined)[];
    try {
      results = await this.run(batch.map((p) => p.item));
    } catch (err) {
      if (batch.length === 1) batch[0]!.reject(err);
      else await Promise.all(batch.map((p) => this.send([p])));
      return;
    }
    batch.forEach((p, i) => {
      const result = results[i];
      if (result !== undefined) p.resolve(result);
      else p.reject(new Error(`the statement did not answer for ${this.what(p.item)}`));
    });
  }
}
