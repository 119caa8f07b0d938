import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

/** A real rcflow process (compiled by `npm run build`), with its output kept for assertions. */
export class RcflowProcess {
  output = '';
  readonly exited: Promise<number | null>;

  private constructor(readonly proc: ChildProcess) {
    proc.stdout!.on('data', (d) => (this.output += d));
    proc.stderr!.on('data', (d) => (this.output += d));
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
  }

  /** `stdin: true` keeps the process' standard input open for `type` (the reference agent's console). */
  static start(
    script: 'api' | 'worker' | 'cli' | 'agent' | 'simulator',
    env: Record<string, string>,
    args: string[] = [],
    opts: { stdin?: boolean } = {},
  ): RcflowProcess {
    const entry = {
      api: 'apps/api/src/main.js',
      worker: 'apps/worker/src/main.js',
      cli: 'apps/api/src/cli.js',
      agent: 'apps/agent/src/main.js',
      simulator: 'apps/agent/src/simulator.js',
    }[script];
    const proc = spawn(process.execPath, [join(ROOT, 'dist', entry), ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', ...env },
      stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    return new RcflowProcess(proc);
  }

  /**
   * Runs a program on a pseudo-terminal, as a person at a terminal runs it: util-linux
   * `script -qfec` gives it a tty for stdin, stdout and stderr (all read back as `output`, with
   * \r\n line ends), and `press` sends keys through it (Ctrl-C is '\x03'). `exited` is the
   * program's own exit code (`-e`).
   */
  static startInTerminal(program: 'agent', env: Record<string, string>, args: string[]): RcflowProcess {
    const entry = { agent: 'apps/agent/src/main.js' }[program];
    const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
    const command = ['exec', process.execPath, join(ROOT, 'dist', entry), ...args].map(quote).join(' ');
    const proc = spawn('script', ['-qfec', command, '/dev/null'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', TERM: 'dumb', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new RcflowProcess(proc);
  }

  /** Sends keys to a process started with `startInTerminal` (Enter is '\r'). */
  press(keys: string): void {
    this.proc.stdin!.write(keys);
  }

  /** Types a line at the process' console (started with `stdin: true`). */
  type(line: string): void {
    this.proc.stdin!.write(`${line}\n`);
  }

  async waitFor(text: string | RegExp, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (typeof text === 'string' ? this.output.includes(text) : text.test(this.output)) return;
      if (this.proc.exitCode !== null) throw new Error(`process exited (${this.proc.exitCode}) before "${text}":\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for "${text}":\n${this.output}`);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return this.exited;
  }
}

/** Runs a CLI command to completion. */
export async function runCli(env: Record<string, string>, args: string[]): Promise<{ code: number | null; output: string }> {
  const p = RcflowProcess.start('cli', env, args);
  const code = await p.exited;
  return { code, output: p.output };
}

export async function waitUntil<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
