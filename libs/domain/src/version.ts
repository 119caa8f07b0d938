/**
 * Parses a dotted numeric version ("1.2.3", "10.0.19045") into its numeric parts as
 * digit strings without leading zeros. Anything after the first '-' or '+' (pre-release or
 * build metadata) is ignored. Returns null when the text is not a dotted numeric version.
 */
export function parseVersion(version: string): string[] | null {
  const core = version.trim().split(/[-+]/, 1)[0] ?? '';
  if (!/^\d+(\.\d+)*$/.test(core)) return null;
  // Parts are kept as digit strings so that builds beyond 2^53 still compare exactly.
  return core.split('.').map((part) => part.replace(/^0+(?=\d)/, ''));
}

function compareParts(a: string, b: string): number {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Compares two dotted numeric versions: negative when `a < b`, 0 when equal, positive when
 * `a > b`. Missing parts count as 0 ("1.2" equals "1.2.0"); anything after '-' or '+' is ignored.
 * @throws TypeError when either argument is not a dotted numeric version.
 */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (!pa) throw new TypeError(`not a dotted numeric version: ${JSON.stringify(a)}`);
  if (!pb) throw new TypeError(`not a dotted numeric version: ${JSON.stringify(b)}`);
  const length = Math.max(pa.length, pb.length);
  for (let i = 0; i < length; i++) {
    const cmp = compareParts(pa[i] ?? '0', pb[i] ?? '0');
    if (cmp !== 0) return cmp;
  }
  return 0;
}
