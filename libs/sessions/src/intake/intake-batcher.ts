import type { IntakeOutcome, IntakeRow } from './intake-statement';

interface Pending {
  row: IntakeRow;
  resolve(outcome: IntakeOutcome): void;
  reject(err: unknown): void;
}

/** Runs one intake statement for some rows and answers for each, by session id. */
export type IntakeRunner = (rows: IntakeRow[]) => Promise<Map<string, IntakeOutcome>>;

/**
 * Sends concurrent intake requests to PostgreSQL together. A request goes out on the next turn of
 * the event loop with whatever else arrived meanwhile; while `maxInFlight` statements are out,
 * requests wait and leave together as soon as one returns. Under light load nothing waits; under
 * load one statement and one commit serve many requests, which is most of the cost of each.
 *
 * Requests sent together commit together or not at all; none is answered before its statement
 * commits. When a statement of several fails, each of its requests is sent again alone (nothing
 * was written), so one request that PostgreSQL refuses fails alone.
 */
export class IntakeBatcher {
  private queue: Pending[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly run: IntakeRunner,
    private readonly maxInFlight: number,
    private readonly maxBatch: number,
  ) {}

  submit(row: IntakeRow): Promise<IntakeOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ row, resolve, reject });
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

  private async send(batch: Pending[]): Promise<void> {
    let outcomes: Map<string, IntakeOutcome>;
    try {
      outcomes = await this.run(batch.map((p) => p.row));
    } catch (err) {
      if (batch.length === 1) batch[0]!.reject(err);
      else await Promise.all(batch.map((p) => this.send([p])));
      return;
    }
    for (const p of batch) {
      const outcome = outcomes.get(p.row.id);
      if (outcome) p.resolve(outcome);
      else p.reject(new Error(`the intake statement did not answer for session ${p.row.id}`));
    }
  }
}
