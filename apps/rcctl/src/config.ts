import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isApiKey, parseUrl } from './input';

/** What `rcctl login` keeps: the API's address and the key (readable by the user alone). */
export interface StoredConfig {
  url: string;
  key: string;
}

/** $XDG_CONFIG_HOME/rcflow/config.json, else ~/.config/rcflow/config.json. */
export function configPath(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_CONFIG_HOME;
  // The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
  if (xdg?.startsWith('/')) return join(xdg, 'rcflow', 'config.json');
  const home = env.HOME;
  if (!home) throw new Error('neither XDG_CONFIG_HOME nor HOME is set: cannot place the config file');
  return join(home, '.config', 'rcflow', 'config.json');
}

export class ConfigError extends Error {}

/** The stored config, or null when there is none. A file that is not ours is an error, not "logged out". */
export function readConfig(path: string, warn: (line: string) => void): StoredConfig | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ConfigError(`cannot read ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError(`${path} is not JSON: run rcctl login again`);
  }
  const c = parsed as Partial<StoredConfig> | null;
  if (!c || typeof c.url !== 'string' || typeof c.key !== 'string' || !isApiKey(c.key)) {
    throw new ConfigError(`${path} does not hold {url, key}: run rcctl login again`);
  }
  let url: string;
  try {
    url = parseUrl(c.url);
  } catch {
    throw new ConfigError(`${path} holds a malformed url: run rcctl login again`);
  }
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) warn(`${path} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${path}`);
  return { url, key: c.key };
}

/**
 * Writes the config atomically with mode 0600 in a directory of mode 0700: a temporary file
 * created 0600 (never wider, whatever the umask), then renamed over the old one.
 */
export function writeConfig(path: string, config: StoredConfig): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(config, null, 2)}\n`);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** Removes the stored config; whether there was one. */
export function removeConfig(path: string): boolean {
  try {
    statSync(path);
  } catch {
    return false;
  }
  rmSync(path, { force: true });
  return true;
}
