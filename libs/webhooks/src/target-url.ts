/** Why a subscription's URL is refused, or null when it is acceptable. */
export function targetUrlProblem(raw: string, allowHttp: boolean): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be an absolute URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an https URL';
  if (url.protocol === 'http:' && !allowHttp)
    return 'must be an https URL (http is allowed outside production, or with WEBHOOK_ALLOW_HTTP=true)';
  if (url.username || url.password) return 'must not carry credentials (user:password@); rcflow signs every delivery instead';
  if (url.hash) return 'must not have a fragment';
  if (!url.hostname) return 'must name a host';
  return null;
}
