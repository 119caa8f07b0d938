import type { Fetch } from './api-client';

/** Everything rcctl touches outside itself, so that tests can run its commands in-process. */
export interface Io {
  env: NodeJS.ProcessEnv;
  /** Writes one line to standard output. */
  out: (line: string) => void;
  /** Writes one line to standard error. */
  err: (line: string) => void;
  fetch: Fetch;
  now: () => number;
  /** Reads the API key from the terminal without echo, or the first line of a piped standard input. */
  readSecret: (prompt: string) => Promise<string>;
  /** Aborted by Ctrl-C. */
  signal: AbortSignal;
  /** A fresh Idempotency-Key. */
  newIdempotencyKey: () => string;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}
