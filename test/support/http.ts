/** A tiny client for the API under test. */
export class Api {
  constructor(
    readonly base: string,
    readonly key?: string,
  ) {}

  as(key: string): Api {
    return new Api(this.base, key);
  }

  async req(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: {
        ...(this.key ? { authorization: `Bearer ${this.key}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    return { status: res.status, body: json, headers: res.headers };
  }

  get = (path: string) => this.req('GET', path);
  post = (path: string, body?: unknown, headers?: Record<string, string>) => this.req('POST', path, body ?? {}, headers);
  put = (path: string) => this.req('PUT', path);
}
