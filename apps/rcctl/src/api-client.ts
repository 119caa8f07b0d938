/** A small client of the rcflow HTTP API over Node's fetch: JSON in and out, the API's errors as ApiError. */

export type Fetch = typeof fetch;

/** An answer of the API with its error shape `{error:{status,code,message,details}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** `403 forbidden — alice lacks the permission audit.read`, with the paths at fault for a 400. */
  describe(): string {
    const paths = Array.isArray(this.details)
      ? (this.details as unknown[])
          .map((d) => (d && typeof d === 'object' && 'path' in d ? String(d.path) : null))
          .filter((p): p is string => p !== null)
      : [];
    const at = paths.length > 0 && !paths.every((p) => this.message.includes(p)) ? ` (${paths.join(', ')})` : '';
    return `${this.status} ${this.code} — ${this.message}${at}`;
  }
}

/** The API could not be reached at all (refused, unknown host, reset, timed out). */
export class ConnectionError extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`cannot reach rcflow at ${url} (${reason}); is the API running? Set the address with --url or RCFLOW_URL`);
    this.name = 'ConnectionError';
  }
}

/** What went wrong underneath fetch's "fetch failed", in a few words. */
export function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } } | null)?.cause;
  const code = cause?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'unknown host';
    case 'ECONNRESET':
      return 'connection reset';
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'connection timed out';
    case undefined:
      return cause?.message ?? (err instanceof Error ? err.message : String(err));
    default:
      return code;
  }
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  headers?: Record<string, string>;
  /** How long to wait for the whole answer (default 30 s). */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;

export function withQuery(path: string, query: Query = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly key: string | null,
    readonly fetchImpl: Fetch = fetch,
  ) {}

  /** The headers of every call: the key as a bearer token. */
  authHeaders(): Record<string, string> {
    return this.key ? { authorization: `Bearer ${this.key}` } : {};
  }

  /** Sends a request; resolves to the parsed JSON body (null when empty) with the response's headers. */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the shape it expects of the JSON
  async call<T>(method: string, path: string, opts: RequestOptions = {}): Promise<{ body: T; headers: Headers; status: number }> {
    const url = `${this.baseUrl}${withQuery(path, opts.query)}`;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const signal = AbortSignal.timeout(timeoutMs);
    let res: Response;
    let text: string;
    try {
      res = await this.fetchImpl(url, {
        method,
        headers: {
          accept: 'application/json',
          ...this.authHeaders(),
          ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...opts.headers,
        },
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal,
      });
      text = await res.text();
    } catch (err) {
      if (signal.aborted)
        throw new ConnectionError(this.baseUrl, `no answer to ${method} ${path} within ${Math.round(timeoutMs / 1000)} s`);
      throw new ConnectionError(this.baseUrl, networkReason(err));
    }
    if (!res.ok) throw errorOf(res.status, text);
    let body: unknown = null;
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        throw new ApiError(res.status, 'malformed_response', `the answer of ${method} ${path} is not JSON: is ${this.baseUrl} rcflow?`);
      }
    }
    return { body: body as T, headers: res.headers, status: res.status };
  }

  async get<T>(path: string, query?: Query, timeoutMs?: number): Promise<T> {
    return (await this.call<T>('GET', path, { query, timeoutMs })).body;
  }

  async post<T>(path: string, body: unknown, headers?: Record<string, string>): Promise<T> {
    return (await this.call<T>('POST', path, { body, headers })).body;
  }
}

/** The ApiError an unsuccessful answer stands for: the API's error shape, or its status alone. */
export function errorOf(status: number, text: string): ApiError {
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown; details?: unknown } };
    const e = parsed.error;
    if (e && typeof e.message === 'string') {
      return new ApiError(status, typeof e.code === 'string' ? e.code : 'error', e.message, e.details);
    }
  } catch {
    /* not the API's error shape: the status says it */
  }
  const snippet = text.trim().slice(0, 200);
  return new ApiError(status, 'http_error', snippet === '' ? 'no error body' : snippet);
}
