import { createHash } from 'node:crypto';

/**
 * A uniform draw in [0, 1) fixed by the seed and the parts: a rerun with the same seed makes the
 * same choice for the same agent and command, whatever order commands arrive in.
 */
export function seededDraw(seed: string, ...parts: (string | number)[]): number {
  const digest = createHash('sha256')
    .update(`${seed}\u0000${parts.join('\u0000')}`)
    .digest();
  return digest.readUInt32BE(0) / 2 ** 32;
}

/** Bounds how many of something run at once (enrolments, WebSocket handshakes). */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  acquire(): Promise<() => void> {
    return new Promise((resolve) => {
      const grant = () => {
        this.active++;
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          this.active--;
          this.waiting.shift()?.();
        });
      };
      if (this.active < this.limit) grant();
      else this.waiting.push(grant);
    });
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await task();
    } finally {
      release();
    }
  }
}
