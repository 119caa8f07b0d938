// Small statistics helpers.
export function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

export function percentiles(values, qs = [0.5, 0.95, 0.99]) {
  const s = [...values].sort((a, b) => a - b);
  return Object.fromEntries(qs.map((q) => [`p${Math.round(q * 100)}`, quantile(s, q)]));
}

export const median = (xs) => {
  const s = [...xs].filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (s.length === 0) return null;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export const round = (x, digits = 1) =>
  x === null || x === undefined || Number.isNaN(x) ? null : Math.round(x * 10 ** digits) / 10 ** digits;

/** Median, min and max of a list of numbers. */
export function summary(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x));
  return { median: median(v), min: v.length ? Math.min(...v) : null, max: v.length ? Math.max(...v) : null, n: v.length };
}

/** Wall-clock milliseconds with sub-millisecond resolution (one clock for every process on this machine). */
export const nowMs = () => performance.timeOrigin + performance.now();

/** p50, p95, p99 and max of a list of milliseconds, rounded to 0.1 ms, with how many there were. */
export function distribution(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x));
  const p = percentiles(v);
  return {
    n: v.length,
    p50: round(p.p50),
    p95: round(p.p95),
    p99: round(p.p99),
    max: v.length ? round(Math.max(...v)) : null,
  };
}
