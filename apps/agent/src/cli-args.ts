import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A command-line mistake: the program prints the message and exits 64 (EX_USAGE). */
export class UsageError extends Error {
  readonly exitCode = 64;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** util.parseArgs, strict, with its errors turned into UsageErrors. */
export function parseCli<O extends Options>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    // parseArgs appends advice about positionals that does not apply to these programs.
    throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
}

export function parseNumber(
  flag: string,
  raw: string,
  { min, max, integer = false }: { min: number; max: number; integer?: boolean },
): number {
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min || value > max) {
    throw new UsageError(`${flag} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

export function parseServerUrl(raw: string | undefined): string {
  if (!raw) throw new UsageError('--server is required (for example --server http://127.0.0.1:3000)');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--server must be an http or https URL, got ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--server must be an http or https URL, got ${JSON.stringify(raw)}`);
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new UsageError('--server must not carry credentials, a query or a fragment');
  }
  return url.toString().replace(/\/+$/, '');
}

/** Joins a server base URL (which may carry a path prefix behind a proxy) and an API path. */
export function serverUrl(base: string, path: string, websocket = false): string {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`;
  if (websocket) url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.toString();
}
