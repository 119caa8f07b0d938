import { BeforeApplicationShutdown, Injectable } from '@nestjs/common';
import type { Response } from 'express';
import { TooManyRequests } from '@rcflow/domain';

/** Streamed reviews running at once in one API process (each reads device pages and holds a socket). */
const MAX_CONCURRENT = 4;
/** Bytes gathered before one write to the socket. */
const CHUNK_BYTES = 64 * 1024;

/**
 * Runs a streamed answer: buffered writes that wait for the socket to drain (flat memory), a
 * client that goes away stops the producer at its next device, and shutdown stops them all.
 */
@Injectable()
export class ReviewStreams implements BeforeApplicationShutdown {
  private readonly running = new Set<() => void>();

  async run(res: Response, produce: (write: (text: string) => Promise<void>, isAborted: () => boolean) => Promise<void>): Promise<void> {
    if (this.running.size >= MAX_CONCURRENT) throw new TooManyRequests(5);
    const state = { aborted: false };
    let wake: (() => void) | null = null;
    const abort = () => {
      state.aborted = true;
      wake?.();
    };
    this.running.add(abort);
    res.on('close', abort);
    let buffer = '';
    const flush = async () => {
      if (buffer === '' || state.aborted) return;
      if (!res.headersSent) {
        res.status(200);
        res.setHeader('Cache-Control', 'no-store');
      }
      const ok = res.write(buffer);
      buffer = '';
      if (!ok) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          res.once('drain', resolve);
        });
        wake = null;
      }
    };
    try {
      await produce(
        async (text) => {
          buffer += text;
          if (buffer.length >= CHUNK_BYTES) await flush();
        },
        () => state.aborted,
      );
      if (state.aborted) {
        res.destroy();
        return;
      }
      await flush();
      if (!res.headersSent) res.status(200).setHeader('Cache-Control', 'no-store');
      res.end();
    } finally {
      res.off('close', abort);
      this.running.delete(abort);
    }
  }

  beforeApplicationShutdown(): void {
    for (const abort of this.running) abort();
  }
}
