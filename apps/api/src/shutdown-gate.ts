import { BeforeApplicationShutdown, Injectable, NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { ShuttingDown } from '@rcflow/domain';
import { Readiness } from '@rcflow/jobs';

/** Liveness and readiness answer while draining: readiness says 503 itself, with why. */
const PROBES = new Set(['/health/live', '/health/ready']);

/** Once shutdown begins, new requests get 503 while in-flight ones finish. */
@Injectable()
export class ShutdownGate implements BeforeApplicationShutdown, NestMiddleware {
  private closing = false;
  private readonly onClosing: (() => void)[] = [];

  constructor(private readonly readiness: Readiness) {}

  /** From now on new requests get 503 (the listener stays open until the app closes); long-lived answers are told to end. */
  close(): void {
    if (this.closing) return;
    this.closing = true;
    this.readiness.markDraining();
    for (const listener of this.onClosing) listener();
  }

  /** Runs `listener` when shutdown begins (at once if it has): for answers that would otherwise hold the process open, like event streams. */
  onClose(listener: () => void): void {
    if (this.closing) listener();
    else this.onClosing.push(listener);
  }

  beforeApplicationShutdown(): void {
    this.close();
  }

  use(req: Request, res: Response, next: NextFunction): void {
    if (!this.closing) return next();
    res.setHeader('Connection', 'close');
    if (req.method === 'GET' && PROBES.has(req.path)) return next();
    const e = new ShuttingDown();
    res.status(e.status).json({ error: { status: e.status, code: e.code, message: e.message } });
  }
}
