import { BeforeApplicationShutdown, Injectable, NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { ShuttingDown } from '@rcflow/domain';

/** Once shutdown begins, new requests get 503 while in-flight ones finish. */
@Injectable()
export class ShutdownGate implements BeforeApplicationShutdown, NestMiddleware {
  private closing = false;

  /** From now on new requests get 503 (the listener stays open until the app closes). */
  close(): void {
    this.closing = true;
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
