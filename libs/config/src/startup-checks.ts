/**
 * Start-up reachability: an unreachable database or Redis is told in one line naming the variable
 * (its host and port, never a password) instead of a driver's stack traces.
 */

/** `host:port/path` of a URL, without user or password; the raw text never leaves here when it does not parse. */
export function describeUrl(url: string, defaultPort: number): string {
  try {
    const u = new URL(url);
    const path = u.pathname && u.pathname !== '/' ? u.pathname : '';
    return `${u.hostname || 'localhost'}:${u.port || defaultPort}${path}`;
  } catch {
    return '(unparseable URL)';
  }
}

/** The URL with its password replaced by `***` (the user name kept). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/** The most telling message of an error (Node's AggregateError of a dual-stack connect has none of its own). */
export function reason(err: unknown): string {
  const e = (err ?? {}) as { message?: string; code?: string; errors?: unknown[] };
  if (e.message) return e.message.split('\n')[0] ?? e.message;
  if (Array.isArray(e.errors) && e.errors.length) return reason(e.errors[0]);
  return e.code ?? String(err);
}

export interface StartupCheck {
  /** The variable the operator fixes, e.g. DATABASE_URL. */
  variable: string;
  /** What to show of its value (no password). */
  shown: string;
  probe: () => Promise<void>;
}

/** Runs the checks in order; the first failure is one line: "<program> cannot start: <VAR> (<shown>) is unreachable: <why>". */
export async function firstStartupProblem(program: string, checks: StartupCheck[]): Promise<string | null> {
  for (const c of checks) {
    try {
      await c.probe();
    } catch (err) {
      return `${program} cannot start: ${c.variable} (${c.shown}) is unreachable: ${reason(err)}`;
    }
  }
  return null;
}
