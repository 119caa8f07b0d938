/**
 * A fake ticket system for rcflow's write-back, one kind per server: it accepts the one request
 * each vendor documents for a private note and refuses anything else as the vendor would (rules in
 * vendor-rules.ts), each refusal with a JSON `{ error }` saying what was wrong. It records accepted
 * notes as plain text and every refusal, and can play down (503), unreachable (socket destroyed)
 * or throttled (429 + Retry-After). Used by tests and by `npm run fake-vendor` (see TESTING.md).
 *
 * Inspection and control over HTTP: GET /_fake/notes, /_fake/refusals, /_fake/mode;
 * POST /_fake/mode {"mode":"ok"|"down"|"unreachable"} or {"mode":"throttle","count":N,"retryAfter":"1"};
 * POST /_fake/reset.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TicketKind } from '@rcflow/tickets';
import { DEFAULT_CREDENTIALS, readNoteRequest, Refused, ROUTES, vendorAnswer } from './vendor-rules';

export { DEFAULT_CREDENTIALS } from './vendor-rules';

export interface FakeNote {
  kind: TicketKind;
  /** Jira key, ServiceNow sys_id, Zendesk/Freshworks id, GitHub `owner/repo#n`, generic `ticket`. */
  ticket: string;
  /** The note as plain text (ADF and HTML turned back into lines). */
  text: string;
  /** Private/internal where the vendor has the notion (Jira: the sd.public.comment property); GitHub comments are public. */
  private: boolean;
  method: string;
  path: string;
  receivedAt: string;
  headers: Record<string, string>;
}

export interface FakeRefusal {
  kind: TicketKind;
  method: string;
  path: string;
  status: number;
  reason: string;
  receivedAt: string;
}

export type FakeMode =
  | { mode: 'ok' }
  /** 503 without Retry-After. */
  | { mode: 'down' }
  /** The socket is destroyed before any answer. */
  | { mode: 'unreachable' }
  /** The next `count` note requests get 429 (with Retry-After when given), then ok. */
  | { mode: 'throttle'; count: number; retryAfter?: string };

export interface FakeVendorOptions {
  /** Fields of the outbound credentials; defaults to DEFAULT_CREDENTIALS[kind]. */
  credentials?: Record<string, string>;
  now?: () => number;
  onNote?: (note: FakeNote) => void;
  onRefusal?: (refusal: FakeRefusal) => void;
}

const RECORDED_HEADERS = ['content-type', 'accept', 'user-agent', 'x-github-api-version', 'x-rcflow-timestamp'];
const BODY_LIMIT = 1024 * 1024;

/** Checks a mode given through the API or POST /_fake/mode; throws a 400 Refused when it is not one. */
export function parseMode(body: unknown): FakeMode {
  const o = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const { mode, count, retryAfter } = o;
  if (mode === 'ok' || mode === 'down' || mode === 'unreachable') return { mode };
  if (mode !== 'throttle') throw new Refused(400, 'mode must be ok, down, unreachable or throttle');
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1)
    throw new Refused(400, 'throttle needs count, a positive integer');
  if (retryAfter === undefined) return { mode, count };
  if (typeof retryAfter !== 'string' && typeof retryAfter !== 'number')
    throw new Refused(400, 'retryAfter must be seconds or an HTTP date, as a string');
  return { mode, count, retryAfter: String(retryAfter) };
}

export class FakeVendor {
  /** Accepted notes, oldest first. */
  readonly notes: FakeNote[] = [];
  /** Refused note requests with the reason, oldest first (failure modes are counted, not listed). */
  readonly refusals: FakeRefusal[] = [];
  /** Note requests the failure mode answered instead. */
  readonly counts = { down: 0, unreachable: 0, throttled: 0 };
  readonly credentials: Record<string, string>;
  private current: FakeMode = { mode: 'ok' };
  private readonly waiters = new Set<() => void>();
  private readonly server = http.createServer((req, res) => void this.onRequest(req, res));
  private readonly now: () => number;

  constructor(
    readonly kind: TicketKind,
    private readonly options: FakeVendorOptions = {},
  ) {
    this.credentials = { ...(options.credentials ?? DEFAULT_CREDENTIALS[kind]) };
    this.now = options.now ?? Date.now;
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this.url;
  }

  get url(): string {
    const { address, port } = this.server.address() as AddressInfo;
    return `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  get mode(): FakeMode {
    return { ...this.current };
  }

  setMode(mode: FakeMode): void {
    this.current = parseMode(mode);
  }

  /** Forgets notes, refusals and counts, and goes back to ok. */
  reset(): void {
    this.notes.length = 0;
    this.refusals.length = 0;
    Object.assign(this.counts, { down: 0, unreachable: 0, throttled: 0 });
    this.current = { mode: 'ok' };
  }

  /** Resolves with the notes once there are at least n; rejects after timeoutMs, naming the last refusal. */
  waitForNotes(n: number, timeoutMs = 5000): Promise<FakeNote[]> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.notes.length < n) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve([...this.notes]);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        const last = this.refusals.at(-1);
        const refused = `${this.refusals.length} refused${last ? `, last: ${last.status} ${last.reason}` : ''}`;
        reject(new Error(`fake ${this.kind}: ${this.notes.length} of ${n} notes after ${timeoutMs} ms; ${refused}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const method = req.method ?? 'GET';
    if (path.startsWith('/_fake/')) {
      await this.control(req, res, `${method} ${path}`);
      return;
    }
    if (this.current.mode === 'unreachable') {
      this.counts.unreachable++;
      req.socket.destroy();
      return;
    }
    const receivedAt = new Date(this.now()).toISOString();
    try {
      const raw = await readBody(req);
      if (this.current.mode === 'down') {
        this.counts.down++;
        send(res, 503, { error: 'service unavailable (fake in mode down)' });
      } else if (this.current.mode === 'throttle') {
        this.counts.throttled++;
        const { retryAfter } = this.current;
        if (--this.current.count <= 0) this.current = { mode: 'ok' };
        send(
          res,
          429,
          { error: 'too many requests (fake in mode throttle)' },
          retryAfter === undefined ? {} : { 'retry-after': retryAfter },
        );
      } else {
        const read = readNoteRequest(this.kind, { method, path, headers: req.headers, raw }, this.credentials, this.now());
        const headers = Object.fromEntries(RECORDED_HEADERS.flatMap((h) => (req.headers[h] ? [[h, String(req.headers[h])]] : [])));
        const note: FakeNote = { kind: this.kind, ...read, method, path, receivedAt, headers };
        this.notes.push(note);
        this.options.onNote?.(note);
        for (const wake of [...this.waiters]) wake();
        send(res, ROUTES[this.kind].ok, vendorAnswer(this.kind, read, this.notes.length, receivedAt));
      }
    } catch (err) {
      if (!(err instanceof Refused)) {
        send(res, 500, { error: `the fake failed: ${String(err)}` });
        return;
      }
      const refusal: FakeRefusal = { kind: this.kind, method, path, status: err.status, reason: err.reason, receivedAt };
      this.refusals.push(refusal);
      this.options.onRefusal?.(refusal);
      send(res, err.status, { error: err.reason }, err.headers);
    }
  }

  private async control(req: http.IncomingMessage, res: http.ServerResponse, route: string): Promise<void> {
    const raw = await readBody(req).catch(() => Buffer.alloc(0));
    try {
      const [status, body] = this.controlAnswer(route, raw);
      send(res, status, body);
    } catch (err) {
      send(res, 400, { error: err instanceof Refused ? err.reason : 'the body is not JSON' });
    }
  }

  private controlAnswer(route: string, raw: Buffer): [number, unknown] {
    switch (route) {
      case 'GET /_fake/notes':
        return [200, this.notes];
      case 'GET /_fake/refusals':
        return [200, this.refusals];
      case 'GET /_fake/mode':
        return [200, { ...this.current, counts: this.counts }];
      case 'POST /_fake/reset':
        this.reset();
        return [200, this.mode];
      case 'POST /_fake/mode':
        this.current = parseMode(JSON.parse(raw.toString('utf8') || 'null'));
        return [200, this.mode];
      default:
        return [404, { error: 'the fake answers GET /_fake/notes, /_fake/refusals, /_fake/mode; POST /_fake/mode, /_fake/reset' }];
    }
  }
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= BODY_LIMIT) chunks.push(chunk);
    });
    req.on('end', () => (size > BODY_LIMIT ? reject(new Refused(413, 'the body is over 1 MiB')) : resolve(Buffer.concat(chunks))));
    req.on('error', reject);
  });
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}
