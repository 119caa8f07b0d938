import { parseCredential, type EnrolRequest, type EnrolResponse } from '@rcflow/agent-protocol';
import { Backoff } from './backoff';
import { serverUrl } from './cli-args';
import type { Logger } from './logger';

export const ENROL_PATH = '/v1/agent/enrol';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An enrolment that failed; `permanent` ones (the token was refused) are not worth retrying. */
export class EnrolmentError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
    readonly status: number | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'EnrolmentError';
  }
}

/** One attempt at POST /v1/agent/enrol. Error messages never carry the token. */
export async function enrol(server: string, request: EnrolRequest, timeoutMs = 15_000): Promise<EnrolResponse> {
  let res: Response;
  try {
    res = await fetch(serverUrl(server, ENROL_PATH), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(request),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new EnrolmentError(`cannot reach ${server}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, false);
  }
  const text = await res.text().catch(() => '');
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    /* reported below */
  }
  if (res.status === 200 || res.status === 201) {
    const { deviceId, credential } = (body ?? {}) as Partial<EnrolResponse>;
    if (typeof deviceId !== 'string' || !UUID.test(deviceId) || typeof credential !== 'string' || !parseCredential(credential, 'rcd')) {
      throw new EnrolmentError(
        `the server answered enrolment with HTTP ${res.status} but without a device id and credential`,
        false,
        res.status,
      );
    }
    return { deviceId, credential };
  }
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const code = typeof error?.code === 'string' ? error.code : null;
  const message = typeof error?.message === 'string' ? error.message.slice(0, 500) : text.slice(0, 200) || res.statusText;
  // 4xx says this token will not work however often we try; 408/429 and 5xx may pass later.
  const permanent = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429;
  throw new EnrolmentError(`enrolment refused with HTTP ${res.status}${code ? ` (${code})` : ''}: ${message}`, permanent, res.status, code);
}

/** Enrols, retrying with backoff while the server is unreachable or overloaded; a refused token throws. */
export async function enrolWithRetry(
  server: string,
  request: EnrolRequest,
  options: { log: Logger; backoff?: Backoff; shouldStop?: () => boolean; timeoutMs?: number },
): Promise<EnrolResponse> {
  const backoff = options.backoff ?? new Backoff();
  for (;;) {
    try {
      return await enrol(server, request, options.timeoutMs);
    } catch (err) {
      if (!(err instanceof EnrolmentError) || err.permanent || options.shouldStop?.()) throw err;
      const delay = backoff.next();
      options.log.warn(`${err.message}; retrying enrolment in ${(delay / 1000).toFixed(1)} s`);
      await new Promise((resolve) => setTimeout(resolve, delay));
      if (options.shouldStop?.()) throw err;
    }
  }
}
