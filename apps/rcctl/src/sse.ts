import { ApiError, ConnectionError, errorOf, networkReason, type Fetch } from './api-client';

/** One dispatched Server-Sent Events message. */
export interface SseMessage {
  /** The last event id seen on the stream (this message's `id:`, or an earlier one). */
  id: string | null;
  /** `event:`; "message" when the server sent none. */
  event: string;
  /** The `data:` lines joined with "\n". */
  data: string;
}

/**
 * The text/event-stream format (WHATWG HTML, "Server-sent events"), fed in arbitrary chunks:
 * lines end in LF, CRLF or CR (a CR at the end of one chunk and an LF at the start of the next are
 * one line end); `:` starts a comment (heartbeats); a blank line dispatches the message; a message
 * without data is not dispatched but its `id:` still counts; `retry:` sets the reconnection delay.
 */
export class SseParser {
  lastEventId: string | null = null;
  /** The server's `retry:` in milliseconds, when it sent one. */
  retryMs: number | null = null;
  private line = '';
  private skipLf = false;
  private data: string[] = [];
  private event = '';
  private hasData = false;

  push(chunk: string): SseMessage[] {
    const out: SseMessage[] = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (c === 10 /* LF */ && this.skipLf && i === start && this.line === '') {
        this.skipLf = false;
        start = i + 1;
        continue;
      }
      this.skipLf = false;
      if (c === 10 || c === 13 /* CR */) {
        this.line += chunk.slice(start, i);
        this.onLine(this.line, out);
        this.line = '';
        start = i + 1;
        if (c === 13) this.skipLf = true;
      }
    }
    this.line += chunk.slice(start);
    return out;
  }

  private onLine(line: string, out: SseMessage[]): void {
    if (line === '') {
      if (this.hasData) out.push({ id: this.lastEventId, event: this.event || 'message', data: this.data.join('\n') });
      this.data = [];
      this.event = '';
      this.hasData = false;
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        this.hasData = true;
        break;
      case 'event':
        this.event = value;
        break;
      case 'id':
        if (!value.includes('\u0000')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
      // Unknown fields are ignored, as the format says.
    }
  }
}

export interface StreamOptions {
  baseUrl: string;
  headers: Record<string, string>;
  path: string;
  /** Resume after this event id (sent as Last-Event-ID on the first connection too). */
  lastEventId?: string | null;
  signal: AbortSignal;
  fetchImpl?: Fetch;
  onMessage: (m: SseMessage) => void | Promise<void>;
  /** Called when a connection is open (again), and when one is lost with the delay before the next attempt. */
  onStatus?: (s: { kind: 'open'; attempt: number } | { kind: 'lost'; reason: string; retryInMs: number }) => void;
  /** No byte (heartbeats included) for this long means the connection is dead: reconnect. */
  idleTimeoutMs?: number;
  /** Backoff bounds; grows ×2 from min to max, reset once a connection opens. */
  minDelayMs?: number;
  maxDelayMs?: number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** An error of the message handler: it ends the stream instead of being taken for a dropped connection. */
class HandlerFailed extends Error {
  constructor(override readonly cause: unknown) {
    super('message handler failed');
  }
}

const abortReason = (s: AbortSignal) => (s.reason instanceof Error ? s.reason.message : 'aborted');

/** Whether a failed answer is worth retrying: the server is busy or restarting, not refusing this client. */
const retryable = (e: ApiError) => e.status === 429 || e.status >= 500;

const abortableSleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/**
 * Reads an event stream until `signal` aborts, reconnecting after every drop (network error,
 * server closing, silence longer than idleTimeoutMs, a 5xx or 429) with exponential backoff and
 * Last-Event-ID, so the server resumes after the last message handled. A 4xx other than 429 is the
 * server refusing this request: thrown (as is a first connection that cannot reach the server at all).
 */
export async function followStream(o: StreamOptions): Promise<void> {
  const fetchImpl = o.fetchImpl ?? fetch;
  const sleep = o.sleep ?? abortableSleep;
  const min = o.minDelayMs ?? 500;
  const max = o.maxDelayMs ?? 15_000;
  const idle = o.idleTimeoutMs ?? 60_000;
  let lastEventId = o.lastEventId ?? null;
  let delay = min;
  let everOpened = false;
  let serverRetryMs: number | null = null;
  // Functions, not properties: the compiler would take a property checked once for unchanging across the awaits.
  const stopped = () => o.signal.aborted;
  for (let attempt = 1; !stopped(); attempt++) {
    const conn = new AbortController();
    const abort = () => conn.abort();
    o.signal.addEventListener('abort', abort, { once: true });
    let watchdog: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => conn.abort(new Error(`no data for ${Math.ceil(idle / 1000)} s`)), idle);
    };
    let reason: string;
    const parser = new SseParser();
    const dropped = () => conn.signal.aborted;
    try {
      arm();
      const res = await fetchImpl(`${o.baseUrl}${o.path}`, {
        headers: {
          accept: 'text/event-stream',
          'cache-control': 'no-cache',
          ...o.headers,
          ...(lastEventId === null ? {} : { 'last-event-id': lastEventId }),
        },
        signal: conn.signal,
      });
      if (!res.ok) {
        const err = errorOf(res.status, await res.text());
        if (!retryable(err)) throw err;
        reason = err.describe();
      } else if (!res.body) {
        reason = 'the answer has no body';
      } else {
        everOpened = true;
        delay = min;
        o.onStatus?.({ kind: 'open', attempt });
        const decoder = new TextDecoder();
        const reader = res.body.getReader() as ReadableStreamDefaultReader<Uint8Array>;
        // Aborting the request ends the body of a real fetch; cancelling the reader ends any body.
        conn.signal.addEventListener('abort', () => void reader.cancel().catch(() => undefined), { once: true });
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          arm();
          for (const m of parser.push(decoder.decode(value, { stream: true }))) {
            try {
              await o.onMessage(m);
            } catch (err) {
              throw new HandlerFailed(err);
            }
            // Only what was handled counts as seen: a drop mid-message resumes before it.
            lastEventId = m.id ?? lastEventId;
          }
        }
        if (stopped()) return;
        reason = dropped() ? abortReason(conn.signal) : 'the server closed the stream';
      }
    } catch (err) {
      if (err instanceof ApiError) throw err;
      if (err instanceof HandlerFailed) throw err.cause;
      if (stopped()) return;
      if (!everOpened && !dropped() && (err as Error | null)?.name !== 'AbortError' && attempt === 1) {
        throw new ConnectionError(o.baseUrl, networkReason(err));
      }
      reason = dropped() ? abortReason(conn.signal) : networkReason(err);
    } finally {
      clearTimeout(watchdog);
      o.signal.removeEventListener('abort', abort);
      conn.abort();
    }
    if (stopped()) return;
    serverRetryMs = parser.retryMs ?? serverRetryMs;
    const wait = Math.min(max, Math.max(delay, serverRetryMs ?? 0));
    o.onStatus?.({ kind: 'lost', reason, retryInMs: wait });
    await sleep(wait, o.signal);
    delay = Math.min(max, delay * 2);
  }
}
