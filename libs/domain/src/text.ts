/*
 * The one rule for text that goes into PostgreSQL. PostgreSQL refuses NUL in text and jsonb (the
 * statement fails), and a lone UTF-16 surrogate has no UTF-8 form: the driver silently stores
 * U+FFFD instead, so an audit hash computed over the original text no longer matches what was
 * stored. Both are refused at every boundary (HTTP bodies, query strings, agent frames) with the
 * field named, never replaced.
 */

// A NUL, a high surrogate not followed by a low one, or a low surrogate not preceded by a high one
// (no `u` flag: the pattern works on UTF-16 code units).
// eslint-disable-next-line no-control-regex -- NUL is exactly what this finds
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why PostgreSQL cannot store `s` exactly as given, or null when it can. */
export function textProblem(s: string): string | null {
  const m = UNSTORABLE.exec(s);
  if (!m) return null;
  return m[0] === '\u0000'
    ? `must not contain NUL (U+0000) (at character ${m.index})`
    : `must not contain a lone UTF-16 surrogate (at character ${m.index})`;
}

/** Where a value holds text PostgreSQL cannot store: the path (dot-joined, as zod names fields) and why. */
export interface UnstorableText {
  path: string;
  problem: string;
}

/**
 * The first string (value or object key) anywhere in a parsed JSON value, query or frame that
 * PostgreSQL cannot store exactly, or null. Iterative, so arbitrarily deep input cannot overflow
 * the stack; `root` names the value itself in the path (e.g. `body`).
 */
export function findUnstorableText(value: unknown, root = ''): UnstorableText | null {
  const stack: [unknown, string][] = [[value, root]];
  const join = (path: string, key: string) => (path ? `${path}.${key}` : key);
  while (stack.length) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      const problem = textProblem(v);
      if (problem) return { path: path || 'value', problem };
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], join(path, String(i))]);
    } else if (v !== null && typeof v === 'object') {
      const entries: [string, unknown][] = Object.entries(v);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, child] = entries[i]!;
        const keyProblem = textProblem(key);
        if (keyProblem) return { path: join(path, JSON.stringify(key)), problem: `key ${keyProblem}` };
        stack.push([child, join(path, key)]);
      }
    }
  }
  return null;
}
