import { IncomingMessage, request } from 'node:http';

/** One Server-Sent Event as a client dispatches it. */
export interface SseEvent {
  id: string;
  event: string;
  data: any;
}

/**
 * A raw Server-Sent Events client over node:http, parsing the stream as the EventSource spec
 * does (fields `id`, `event`, `data`, `retry`; comment lines; an event is dispatched at a blank
 * line, so one cut in half never is).
 */
export class SseClient {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  retry: number | null = null;
  /** Resolves when the server ends the stream (or the connection drops). */
  readonly ended: Promise<void>;
  private buffer = '';
  private waiters: (() => void)[] = [];
  private done = false;

  private constructor(
    readonly status: number,
    readonly headers: IncomingMessage['headers'],
    private readonly res: IncomingMessage,
  ) {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => this.take(chunk));
    this.ended = new Promise((resolve) => {
      const finish = () => {
        this.done = true;
        this.wake();
        resolve();
      };
      res.on('end', finish);
      res.on('close', finish);
      res.on('error', finish);
    });
  }

  /** Opens `path`; a non-200 answer is read whole and returned as `refused` (its JSON body). */
  static open(
    base: string,
    path: string,
    opts: { key?: string; lastEventId?: string; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; client: SseClient | null; refused: any; headers: IncomingMessage['headers'] }> {
    const url = new URL(path, base);
    const headers: Record<string, string> = { accept: 'text/event-stream', ...opts.headers };
    if (opts.key) headers.authorization = `Bearer ${opts.key}`;
    if (opts.lastEventId !== undefined) headers['last-event-id'] = opts.lastEventId;
    return new Promise((resolve, reject) => {
      const req = request(url, { headers }, (res) => {
        if (res.statusCode !== 200) {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => {
            let json: unknown = body;
            try {
              json = JSON.parse(body);
            } catch {
              /* not JSON: kept as text */
            }
            resolve({ status: res.statusCode ?? 0, client: null, refused: json, headers: res.headers });
          });
          return;
        }
        resolve({ status: 200, client: new SseClient(200, res.headers, res), refused: null, headers: res.headers });
      });
      req.on('error', reject);
      req.end();
    });
  }

  /** Opens a stream that must be accepted. */
  static async connect(base: string, path: string, opts: { key?: string; lastEventId?: string } = {}): Promise<SseClient> {
    const r = await SseClient.open(base, path, opts);
    if (!r.client) throw new Error(`GET ${path}: ${r.status} ${JSON.stringify(r.refused)}`);
    return r.client;
  }

  get isEnded(): boolean {
    return this.done;
  }

  /** Waits until `test` holds for what was received (or fails when the stream ends first, or after `timeoutMs`). */
  async until(test: (events: SseEvent[], client: SseClient) => boolean, what: string, timeoutMs = 30_000): Promise<SseEvent[]> {
    const deadline = Date.now() + timeoutMs;
    while (!test(this.events, this)) {
      if (this.done) throw new Error(`the stream ended before ${what}; got ${this.summary()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; got ${this.summary()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.events;
  }

  /** Disconnects, as a client going away does. */
  close(): void {
    this.res.destroy();
  }

  summary(): string {
    return JSON.stringify(this.events.map((e) => `${e.id} ${e.event}`));
  }

  private take(chunk: string): void {
    this.buffer += chunk.replace(/\r\n?/g, '\n');
    let cut: number;
    while ((cut = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, cut);
      this.buffer = this.buffer.slice(cut + 2);
      this.dispatch(block);
    }
    this.wake();
  }

  private dispatch(block: string): void {
    let id = '';
    let event = 'message';
    const data: string[] = [];
    let fields = 0;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        this.comments.push(line.slice(1).trim());
        continue;
      }
      const colon = line.indexOf(':');
      const name = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (name === 'id') id = value;
      else if (name === 'event') event = value;
      else if (name === 'data') data.push(value);
      else if (name === 'retry') this.retry = Number(value);
      else continue;
      fields++;
    }
    if (fields === 0 || data.length === 0) return;
    this.events.push({ id, event, data: JSON.parse(data.join('\n')) });
  }

  private wake(): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) w();
  }
}
