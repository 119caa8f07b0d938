import * as readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';

interface Question {
  question: string;
  active: boolean;
  finish: (line: string) => void;
  cancel: (note: string | null) => void;
}

/**
 * One line-based console shared by the consent prompt and the local user's commands: while a
 * question is open a line answers it, otherwise the line goes to `onLine` (e.g. `end`).
 * Questions are asked one at a time; each keeps the deadline it was given when it was queued,
 * because the server's timer started when it sent the command, not when the prompt appeared.
 */
export class LineConsole {
  private rl!: readline.Interface;
  /** Questions in the order asked; the first is the one shown. */
  private readonly waiting: Question[] = [];
  private active: Question | null = null;
  private closed = false;
  onLine: (line: string) => void = () => undefined;
  /**
   * Ctrl-C at a terminal. readline reads the terminal raw, so the key reaches it rather than the
   * kernel: without a listener readline just closes itself (the process keeps running, deaf to the
   * terminal). By default it is turned back into the SIGINT the user meant.
   */
  onInterrupt: () => void = () => process.kill(process.pid, 'SIGINT');

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
  ) {
    this.open();
  }

  private open(): void {
    const terminal = Boolean((this.input as { isTTY?: boolean }).isTTY && (this.output as { isTTY?: boolean }).isTTY);
    const rl = readline.createInterface({ input: this.input, output: terminal ? this.output : undefined, terminal });
    this.rl = rl;
    rl.on('line', (line) => {
      if (this.active) this.active.finish(line);
      else this.onLine(line);
    });
    rl.on('SIGINT', () => this.onInterrupt());
    // Ctrl-D on an empty line closes readline too; a terminal is still there to type at, so it is
    // read again rather than leaving the prompt deaf (a pipe that ends stays ended).
    rl.on('close', () => {
      if (!this.closed && terminal) this.open();
    });
  }

  /** Resolves with the answer line, or null when the time runs out or the question is withdrawn. */
  ask(question: string, timeoutMs: number, signal?: AbortSignal): Promise<string | null> {
    return new Promise((resolve) => {
      const entry: Question = { question, active: false, finish: () => undefined, cancel: () => undefined };
      const finish = (answer: string | null, note: string | null) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        if (entry.active) {
          this.active = null;
          if (note) this.print(note);
        }
        resolve(answer);
        this.next();
      };
      const onAbort = () => finish(null, '(the request was withdrawn)');
      // The clock runs while the question waits its turn, so a queued question times out on time too.
      const timer = setTimeout(() => finish(null, '(no answer: the request timed out)'), timeoutMs);
      entry.finish = (line) => finish(line, null);
      entry.cancel = (note) => finish(null, note);
      if (this.closed || signal?.aborted) return finish(null, null);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
      this.next();
    });
  }

  /** Shows the next question at once (not on a later tick), so an answer typed right after lands on it. */
  private next(): void {
    if (this.closed || this.active || this.waiting.length === 0) return;
    const entry = this.waiting[0]!;
    entry.active = true;
    this.active = entry;
    this.output.write(`${entry.question} `);
  }

  print(text: string): void {
    if (!this.output.writableEnded) this.output.write(`${text}\n`);
  }

  /**
   * Stops reading; the questions still open (or waiting) resolve null at once, the one shown
   * followed by `note` (e.g. why it was answered for the user).
   */
  close(note: string | null = null): void {
    if (this.closed) return;
    this.closed = true;
    for (const entry of [...this.waiting]) entry.cancel(note);
    this.rl.close();
  }
}
