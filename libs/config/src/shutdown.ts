import type { INestApplicationContext, LoggerService } from '@nestjs/common';

/**
 * SIGTERM/SIGINT: stop intake, let jobs drain and connections close (app.close()), then exit 0.
 * If draining takes longer than `timeoutMs` the process exits 1; BullMQ hands unfinished jobs
 * to another worker once their locks expire.
 */
export function exitOnSignals(
  app: INestApplicationContext,
  timeoutMs: number,
  logger: LoggerService,
  /** Runs first, before anything closes: e.g. the API answers 503 for a while so balancers move on. */
  beforeClose: () => Promise<void> = () => Promise.resolve(),
): void {
  let closing = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) return;
    closing = true;
    logger.log(`${signal}: draining (at most ${timeoutMs} ms)`, 'rcflow');
    setTimeout(() => {
      logger.error(`still draining after ${timeoutMs} ms; exiting`, 'rcflow');
      process.exit(1);
    }, timeoutMs).unref();
    beforeClose()
      .then(() => app.close())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error(`shutdown failed: ${err instanceof Error ? err.message : String(err)}`, 'rcflow');
          process.exit(1);
        },
      );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}
