import type { Response } from 'express';
import { auditItem } from '../audit/audit-query';
import { EventAccess, EventFilter, EventRow, eventVisible } from './events-filter';
import type { LiveSink } from './events-hub';

/** Live events held while a stream catches up; past this the stream ends (its client resumes with Last-Event-ID). */
const MAX_HELD = 10_000;
/** Bytes a slow client may leave unread in the socket's buffer before its stream ends (it resumes later). */
const MAX_UNREAD_BYTES = 4 * 1024 * 1024;
/** What an EventSource waits before reconnecting. */
const RETRY_MS = 3000;

/** One event in the text/event-stream format: its id, its action as the event name, the audit list's item as data. */
export function sseEvent(row: EventRow): string {
  const item = auditItem(row);
  return `id: ${item.id}\nevent: ${item.action}\ndata: ${JSON.stringify(item)}\n\n`;
}

/**
 * One subscriber's stream: the caller's filters and access, the HTTP answer it writes to, and
 * the live events that arrive while it is still catching up, held until it has.
 */
export class EventStream implements LiveSink {
  private opened = false;
  private live = false;
  private ended = false;
  /** Live events above this id only: the position the stream joined the live feed at. */
  private joinedAt: bigint | null = null;
  private held: EventRow[] = [];
  private readonly endListeners: (() => void)[] = [];

  constructor(
    readonly principalId: string,
    /** The request, for re-checking its credentials while the stream lasts. */
    readonly request: unknown,
    private readonly res: Response,
    readonly filter: EventFilter,
    public access: EventAccess,
  ) {
    res.on('close', () => this.end());
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** Sends the headers and the reconnect hint. */
  open(): void {
    this.opened = true;
    this.res.status(200);
    this.res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    this.res.setHeader('Cache-Control', 'no-cache, no-transform');
    this.res.setHeader('Connection', 'keep-alive');
    // nginx and friends would otherwise buffer the answer.
    this.res.setHeader('X-Accel-Buffering', 'no');
    this.res.flushHeaders();
    this.res.socket?.setNoDelay(true);
    this.write(`retry: ${RETRY_MS}\n\n`);
  }

  /** The stream joined the live feed at `position`: later events above it are its own. */
  joined(position: string): void {
    this.joinedAt = BigInt(position);
  }

  deliver(rows: readonly EventRow[]): void {
    if (this.ended) return;
    for (const row of rows) {
      if (!eventVisible(row, this.filter, this.access)) continue;
      if (this.live) this.writeRow(row);
      else if (this.held.push(row) > MAX_HELD) return this.end({ abort: true });
    }
  }

  /** Writes catch-up events (read from the table, up to the join position), then resolves when the client has taken them in. */
  async replay(rows: readonly EventRow[]): Promise<void> {
    for (const row of rows) this.writeRow(row);
    if (!this.ended && this.res.writableNeedDrain) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.res.off('drain', done);
          this.res.off('close', done);
          resolve();
        };
        this.res.on('drain', done);
        this.res.on('close', done);
      });
    }
  }

  /** Caught up to the join position: the held live events above it follow, then every new one as it comes. */
  goLive(): void {
    if (this.ended) return;
    const from = this.joinedAt ?? 0n;
    for (const row of this.held) if (BigInt(row.tail_id) > from) this.writeRow(row);
    this.held = [];
    this.live = true;
  }

  heartbeat(): void {
    this.write(': keep-alive\n\n');
  }

  onEnd(listener: () => void): void {
    if (this.ended) listener();
    else this.endListeners.push(listener);
  }

  /**
   * Ends the answer (the client reconnects with Last-Event-ID and carries on where it was). With
   * `abort`, for a client that reads too slowly, the connection is cut without waiting for it to
   * read what is buffered: an event cut in half is never dispatched by an SSE client.
   */
  end(options: { abort?: boolean } = {}): void {
    if (this.ended) return;
    this.ended = true;
    this.held = [];
    // Before the headers the answer is still the caller's (an error goes out with the error shape).
    if (this.opened && options.abort) this.res.destroy();
    else if (this.opened && !this.res.writableEnded) this.res.end();
    for (const listener of this.endListeners.splice(0)) listener();
  }

  private writeRow(row: EventRow): void {
    this.write(sseEvent(row));
  }

  private write(chunk: string): void {
    if (this.ended) return;
    this.res.write(chunk);
    if (this.res.writableLength > MAX_UNREAD_BYTES) this.end({ abort: true });
  }
}
