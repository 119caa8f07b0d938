import type { LoggerService } from '@nestjs/common';
import { pino, type DestinationStream, type Logger as Pino, type LoggerOptions } from 'pino';
import { redactSecrets } from './redact';

/** What the logger is built from (a subset of RcflowConfig, so this lib does not depend on @rcflow/config). */
export interface LogSettings {
  level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** `auto`: pretty when stdout is a terminal outside production, JSON lines otherwise. */
  format: 'json' | 'pretty' | 'auto';
  env: 'development' | 'production' | 'test';
  role: 'api' | 'worker' | 'cli';
}

/** Whether lines are printed for people (pino-pretty) rather than as JSON. */
export function prettyWanted(s: Pick<LogSettings, 'format' | 'env'>, isTTY = process.stdout.isTTY): boolean {
  if (s.format !== 'auto') return s.format === 'pretty';
  // Node leaves isTTY undefined (not false) when stdout is a pipe or a file.
  return isTTY ? s.env !== 'production' : false;
}

/** pino-pretty is a development dependency: a production install without it prints JSON instead. */
function prettyStream(colorize: boolean): DestinationStream | null {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional at run time
    const pretty = require('pino-pretty') as typeof import('pino-pretty');
    return pretty({
      colorize,
      // In-process and synchronous: the demo's own lines and the log lines keep their order.
      sync: true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,role,context',
      messageFormat: '{if context}[{context}] {end}{msg}',
      singleLine: true,
    });
  } catch {
    return null;
  }
}

/** Options shared by every rcflow logger: levels by name, secrets redacted by key name at any depth. */
export function loggerOptions(s: Pick<LogSettings, 'level' | 'role'>): LoggerOptions {
  return {
    level: s.level,
    base: { pid: process.pid, role: s.role },
    formatters: {
      level: (label) => ({ level: label }),
      // Every logged object; child bindings (context, reqId) are rcflow's own and not walked.
      log: (obj) => redactSecrets(obj),
    },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
}

/**
 * The process' root logger: JSON lines on stdout, or pretty lines when {@link prettyWanted}. `destination` replaces stdout (tests).
 */
export function createLogger(s: LogSettings, destination?: DestinationStream): Pino {
  const options = loggerOptions(s);
  if (destination) return pino(options, destination);
  if (prettyWanted(s)) {
    const stream = prettyStream(process.stdout.isTTY);
    if (stream) return pino(options, stream);
    process.stderr.write('rcflow: LOG_FORMAT=pretty needs pino-pretty (a development dependency); logging JSON lines\n');
  }
  // Synchronous, as Node writes to a pipe or a file anyway: a line logged just before process.exit()
  // (a refused start, a shutdown that overran) is never lost.
  return pino(options, pino.destination({ dest: 1, sync: true }));
}

let root: Pino = pino({ level: 'silent' });
const children = new Map<string, Pino>();

/** Makes `logger` the process' root logger (entry points call this once, at start). Until then nothing is logged. */
export function installLogger(logger: Pino): void {
  root = logger;
  children.clear();
}

/** The process' root logger. */
export function rootLogger(): Pino {
  return root;
}

/** A child of the root logger with `context` bound, made once per name (cheap enough for hot paths). */
export function contextLogger(context: string): Pino {
  let child = children.get(context);
  if (!child) children.set(context, (child = root.child({ context })));
  return child;
}

/** Start-up chatter Nest logs at "log" level, route by route; useful only when debugging. */
export const NOISY_CONTEXTS: ReadonlySet<string> = new Set([
  'InstanceLoader',
  'RoutesResolver',
  'RouterExplorer',
  'NestFactory',
  'NestApplication',
]);

type NestLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * Nest's LoggerService on pino: `log(message, context)` becomes `info({ context }, message)`;
 * Nest's start-up lines (NOISY_CONTEXTS) are logged at debug; a stack passed as Nest does
 * (`error(message, stack, context)`) is kept as the error's stack.
 */
export class RcflowNestLogger implements LoggerService {
  constructor(private readonly logger: Pino) {}

  /** A Nest logger over `logger`, for NestFactory's `logger` option. */
  static over(logger: Pino): RcflowNestLogger {
    return new RcflowNestLogger(logger);
  }

  log(message: unknown, ...optionalParams: unknown[]): void {
    const context = optionalParams[optionalParams.length - 1];
    this.write(typeof context === 'string' && NOISY_CONTEXTS.has(context) ? 'debug' : 'info', message, optionalParams);
  }
  error(message: unknown, ...optionalParams: unknown[]): void {
    this.write('error', message, optionalParams);
  }
  warn(message: unknown, ...optionalParams: unknown[]): void {
    this.write('warn', message, optionalParams);
  }
  debug(message: unknown, ...optionalParams: unknown[]): void {
    this.write('debug', message, optionalParams);
  }
  verbose(message: unknown, ...optionalParams: unknown[]): void {
    this.write('trace', message, optionalParams);
  }
  fatal(message: unknown, ...optionalParams: unknown[]): void {
    this.write('fatal', message, optionalParams);
  }

  private write(level: NestLevel, message: unknown, params: unknown[]): void {
    if (!this.logger.isLevelEnabled(level)) return;
    const last = params[params.length - 1];
    const context = params.length > 0 && typeof last === 'string' ? last : undefined;
    const rest = context === undefined ? params : params.slice(0, -1);
    const obj: Record<string, unknown> = context === undefined ? {} : { context };
    if (message instanceof Error) {
      obj.err = message;
      this.logger[level](obj, message.message);
    } else if (typeof message === 'object' && message !== null) {
      this.logger[level](Object.assign(obj, message));
    } else if (level === 'error' && typeof rest[0] === 'string' && /\n\s*at /.test(rest[0])) {
      // Nest's own handlers call error(message, stack, context).
      const err = new Error(String(message));
      err.stack = rest[0];
      obj.err = err;
      this.logger.error(obj, String(message));
    } else {
      this.logger[level](obj, String(message));
    }
  }
}

/**
 * An entry point's logging, from its configuration: builds the root logger, installs it for the
 * libs (transition lines and the like), and gives Nest its LoggerService over it.
 */
export function startLogging(config: {
  logLevel: LogSettings['level'];
  logFormat: LogSettings['format'];
  env: LogSettings['env'];
  role: LogSettings['role'];
}): { logger: Pino; nest: RcflowNestLogger } {
  const logger = createLogger({ level: config.logLevel, format: config.logFormat, env: config.env, role: config.role });
  installLogger(logger);
  return { logger, nest: RcflowNestLogger.over(logger) };
}
