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
  signal?: AbortSignal;
}

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
    let res: Response;
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
        signal: opts.signal,
      });
    } catch (err) {
      if ((err as Error | null)?.name === 'AbortError') throw err;
      throw new ConnectionError(this.baseUrl, networkReason(err));
    }
    const text = await res.text();
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

  async get<T>(path: string, query?: Query): Promise<T> {
    return (await this.call<T>('GET', path, { query })).body;
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
