import { BeforeApplicationShutdown, Injectable, NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { ShuttingDown } from '@rcflow/domain';

/** Once shutdown begins, new requests get 503 while in-flight ones finish. */
@Injectable()
export class ShutdownGate implements BeforeApplicationShutdown, NestMiddleware {
  private closing = false;
  private readonly onClosing: (() => void)[] = [];

  /** From now on new requests get 503 (the listener stays open until the app closes); long-lived answers are told to end. */
  close(): void {
    if (this.closing) return;
    this.closing = true;
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

  use(_req: Request, res: Response, next: NextFunction): void {
    if (!this.closing) return next();
    res.setHeader('Connection', 'close');
    const e = new ShuttingDown();
    res.status(e.status).json({ error: { status: e.status, code: e.code, message: e.message } });
  }
}
