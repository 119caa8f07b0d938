import { ConsoleLogger, LogLevel } from '@nestjs/common';
import type { RcflowConfig } from './config';

const LEVELS: Record<RcflowConfig['logLevel'], LogLevel[]> = {
  fatal: ['fatal'],
  error: ['fatal', 'error'],
  warn: ['fatal', 'error', 'warn'],
  info: ['fatal', 'error', 'warn', 'log'],
  debug: ['fatal', 'error', 'warn', 'log', 'debug'],
  trace: ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'],
  silent: [],
};
/** Start-up chatter Nest logs at "log" level; useful only when debugging. */
const NOISY = new Set(['InstanceLoader', 'RoutesResolver', 'RouterExplorer', 'NestFactory', 'NestApplication']);

/** JSON lines in production, readable lines elsewhere; Nest's route-by-route start-up log only at debug. */
export class RcflowLogger extends ConsoleLogger {
  constructor(private readonly cfg: RcflowConfig) {
    super({ json: cfg.env === 'production', logLevels: LEVELS[cfg.logLevel], colors: process.stdout.isTTY });
  }

  override log(message: unknown, context?: string): void;
  override log(message: unknown, ...rest: unknown[]): void {
    const context = rest[rest.length - 1];
    if (typeof context === 'string' && NOISY.has(context) && !['debug', 'trace'].includes(this.cfg.logLevel)) return;
    super.log(message, ...(rest as [string]));
  }
}
