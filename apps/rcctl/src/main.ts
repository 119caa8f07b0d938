#!/usr/bin/env node
import { randomUUID } from 'node:crypto';
import type { Io } from './context';
import { run } from './program';
import { readSecret } from './secret-input';

/**
 * rcctl: see `rcctl --help`. The first Ctrl-C stops what the command follows (watch, --follow,
 * --wait), which then ends in its own words; a command with nothing to stop, or one that does not
 * end within a second, exits 130. A second Ctrl-C exits at once.
 */
const interrupt = new AbortController();
process.on('SIGINT', () => {
  if (interrupt.signal.aborted) process.exit(130);
  interrupt.abort();
  setTimeout(() => process.exit(130), 1000).unref();
});
// A closed pipe (rcctl watch | head) ends rcctl quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const io: Io = {
  env: process.env,
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  fetch: (input, init) => fetch(input, init),
  now: () => Date.now(),
  readSecret: (prompt) => readSecret(process.stdin, process.stderr, prompt),
  signal: interrupt.signal,
  newIdempotencyKey: () => `rcctl-${randomUUID()}`,
};

void run(process.argv, io).then((code) => {
  process.exitCode = code;
  // Streams are ended by the abort; nothing else should keep rcctl alive, but a stuck socket must not either.
  setTimeout(() => process.exit(code), 2000).unref();
});
