/** Human log lines; agents run under service managers that already capture stderr. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

type Level = 'info' | 'warn' | 'error';
const PREFIX: Record<Level, string> = { info: '', warn: 'warning: ', error: 'error: ' };

export function streamLogger(stream: NodeJS.WritableStream = process.stderr, minLevel: Level = 'info'): Logger {
  const order: Level[] = ['info', 'warn', 'error'];
  const line = (level: Level) => (message: string) => {
    if (order.indexOf(level) < order.indexOf(minLevel)) return;
    stream.write(`${new Date().toISOString()} ${PREFIX[level]}${message}\n`);
  };
  return { info: line('info'), warn: line('warn'), error: line('error') };
}

/** Prefixes every line, so thousands of virtual agents stay tellable apart in one log. */
export function labelledLogger(inner: Logger, label: string): Logger {
  return {
    info: (m) => inner.info(`${label}: ${m}`),
    warn: (m) => inner.warn(`${label}: ${m}`),
    error: (m) => inner.error(`${label}: ${m}`),
  };
}

export const silentLogger: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Keeps lines in memory; for tests. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(m),
    warn: (m) => lines.push(`warning: ${m}`),
    error: (m) => lines.push(`error: ${m}`),
  };
}
