/**
 * The console's only way to the server: same-origin calls that carry the session cookie (set
 * httpOnly by the server; this code never sees it) and the CSRF header the server requires on
 * every write. No API key is kept anywhere in the browser.
 */

export interface ApiError {
  status: number;
  code: string;
  message: string;
}

export interface Result<T> {
  status: number;
  ok: boolean;
  body: T;
  error: ApiError | null;
}

/** Told when the server says the session is over, so the app can show the sign-in form. */
let onSignedOut: () => void = () => undefined;
export function whenSignedOut(listener: () => void): void {
  onSignedOut = listener;
}

export const CSRF_HEADERS = { 'X-Requested-With': 'rcflow-console' } as const;

export async function call<T>(method: string, path: string, body?: unknown): Promise<Result<T>> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { ...CSRF_HEADERS, Accept: 'application/json', ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    return {
      status: 0,
      ok: false,
      body: null as T,
      error: { status: 0, code: 'network', message: `the server does not answer (${String(err)})` },
    };
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    // A streamed answer (NDJSON: the access review of a principal may be one) becomes the list of its lines.
    const ndjson = res.headers.get('content-type')?.includes('ndjson') ?? false;
    parsed = ndjson
      ? text
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as unknown)
      : text
        ? JSON.parse(text)
        : null;
  } catch {
    parsed = text;
  }
  const error = res.ok ? null : errorOf(res.status, parsed);
  if (res.status === 401 && !path.startsWith('/console/session')) onSignedOut();
  return { status: res.status, ok: res.ok, body: parsed as T, error };
}

export const get = <T>(path: string) => call<T>('GET', path);
export const post = <T>(path: string, body?: unknown) => call<T>('POST', path, body ?? {});

function errorOf(status: number, body: unknown): ApiError {
  const e = (body as { error?: Partial<ApiError> } | null)?.error;
  return { status, code: e?.code ?? 'http_error', message: e?.message ?? `HTTP ${status}` };
}

/** A 404 for the route itself (this server has no such endpoint), not for an object behind it. */
export function routeMissing(r: Result<unknown>): boolean {
  return r.status === 404 && /^Cannot (GET|POST|PUT|DELETE|PATCH) /.test(r.error?.message ?? '');
}

/** A query string from the filled-in values only. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (s: string) => UUID.test(s);

interface Named {
  id: string;
  hostname?: string;
  name?: string;
}

/**
 * A device's or principal's id from what a person types: an id as it is, else the exact name (or
 * the first whose name starts with it) among those the caller may list. null: none found.
 */
export async function resolveId(kind: 'devices' | 'principals', text: string): Promise<string | null> {
  const t = text.trim();
  if (!t) return null;
  if (isUuid(t)) return t;
  const field = kind === 'devices' ? 'hostname' : 'name';
  const r = await get<{ items: Named[] }>(`/v1/${kind}${query({ [field]: t, limit: 20 })}`);
  if (!r.ok) return null;
  const items = r.body.items;
  const exact = items.find((i) => (i[field] ?? '').toLowerCase() === t.toLowerCase());
  return (exact ?? items[0])?.id ?? null;
}

const names = new Map<string, Promise<string | null>>();

/** The hostname of a device or the name of a principal, when the caller may read it; cached for the page's life. */
export function nameOf(kind: 'devices' | 'principals', id: string): Promise<string | null> {
  const key = `${kind}:${id}`;
  let p = names.get(key);
  if (!p) {
    p = get<Named>(`/v1/${kind}/${encodeURIComponent(id)}`).then((r) => (r.ok ? (r.body.hostname ?? r.body.name ?? null) : null));
    names.set(key, p);
  }
  return p;
}

export function forgetNames(): void {
  names.clear();
}
