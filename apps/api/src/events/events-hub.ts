import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AuditTail } from '@rcflow/audit';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { ShuttingDown } from '@rcflow/domain';
import { EVENT_COLUMNS, EventRow } from './events-filter';

/** A subscriber of the live feed. */
export interface LiveSink {
  /** New events in id order, all with ids above the position the sink joined at (and above any earlier batch). */
  deliver(rows: readonly EventRow[]): void;
}

/** How many rows one read of the shared tail takes at most. */
const PAGE = 500;
/** At most one warning per this period while the database cannot be read. */
const WARN_EVERY_MS = 30_000;

/**
 * The one reader of new audit events in this API process, fanned out to every open event stream:
 * however many subscribers, PostgreSQL sees one gap-safe tail (AuditTail) polled every
 * EVENTS_POLL_MS while anyone listens, none while nobody does. A sink joining learns the position
 * it joins at: every event above it reaches the sink, none at or below it.
 */
@Injectable()
export class EventsHub {
  private readonly logger = new Logger('EventsHub');
  private readonly sinks = new Set<LiveSink>();
  private tail: AuditTail | null = null;
  private starting: Promise<void> | null = null;
  /** The position of the last batch handed to the sinks (the tail's, in step with the deliveries). */
  private position = '0';
  private closed = false;
  /** Joins under way: the tail is kept for them though no sink is in yet. */
  private joining = 0;
  /** Called after each read of the tail (and on close): joins waiting for the tail to settle. */
  private polled: (() => void)[] = [];
  /** Ends the wait between two reads early (close). */
  private wake: (() => void) | null = null;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  /**
   * Adds `sink` to the live feed and answers the position it joins at. With `settled`, waits until
   * that position is exact for "after" reads too (no event at or below it can still commit), so
   * the caller may read the events up to it from the table.
   */
  async join(sink: LiveSink, options: { settled: boolean }): Promise<string> {
    this.joining++;
    try {
      for (;;) {
        if (this.closed) throw new ShuttingDown();
        if (!this.tail) {
          await this.start();
          continue;
        }
        if (options.settled && !this.tail.settled) {
          await new Promise<void>((resolve) => this.polled.push(resolve));
          continue;
        }
        // In the same turn as the checks above: the position and the sink's first batch agree.
        this.sinks.add(sink);
        return this.position;
      }
    } finally {
      this.joining--;
    }
  }

  leave(sink: LiveSink): void {
    this.sinks.delete(sink);
  }

  /** Stops reading for good (shutdown); waiting joins fail with 503. */
  close(): void {
    this.closed = true;
    this.sinks.clear();
    this.wake?.();
    this.release();
  }

  private start(): Promise<void> {
    this.starting ??= (async () => {
      try {
        const tail = await AuditTail.atHead(this.dataSource, { columns: EVENT_COLUMNS, pageSize: PAGE });
        if (this.closed) return;
        this.tail = tail;
        this.position = tail.through;
        void this.run(tail);
      } finally {
        this.starting = null;
      }
    })();
    return this.starting;
  }

  private async run(tail: AuditTail): Promise<void> {
    let failingSince: number | null = null;
    let warnedAt = 0;
    for (;;) {
      if (this.closed) return;
      if (this.sinks.size === 0 && this.joining === 0) {
        // Nobody listens: stop; the next join starts again at the head then.
        this.tail = null;
        this.release();
        return;
      }
      let more = false;
      try {
        const page = await tail.next();
        more = page.more;
        this.position = page.through;
        if (page.rows.length > 0) {
          const rows = page.rows as EventRow[];
          for (const sink of this.sinks) sink.deliver(rows);
        }
        if (failingSince !== null) this.logger.log('reading audit events again');
        failingSince = null;
      } catch (err) {
        // The database is unreachable for now: keep the streams open and read again (they carry on where they were).
        failingSince ??= Date.now();
        if (Date.now() - warnedAt >= WARN_EVERY_MS) {
          warnedAt = Date.now();
          this.logger.warn(
            `cannot read audit events for the live streams (since ${new Date(failingSince).toISOString()}): ${(err as Error).message}`,
          );
        }
      }
      this.release();
      if (!more) await this.pause(failingSince === null ? this.config.events.pollMs : Math.max(1000, this.config.events.pollMs));
    }
  }

  private release(): void {
    const waiting = this.polled;
    this.polled = [];
    for (const resolve of waiting) resolve();
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }
}
