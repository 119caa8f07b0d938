import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { ConfigError, RcflowConfig, loadConfig } from './config';

/** The embedded run keeps its own audit key beside its PGlite data, created on first start. */
function embeddedAuditKey(): string {
  // eslint-disable-next-line @typescript-eslint/prefer-nullish-coalescing -- an empty PGLITE_DIR means unset too
  const file = join(dirname(process.env.PGLITE_DIR || '.rcflow/pglite'), 'audit.key');
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
  }
  chmodSync(file, 0o600);
  return readFileSync(file, 'utf8').trim();
}

/** Directories 0700 and files 0600, all the way down (symbolic links are left alone). */
export function restrictTree(path: string): void {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st || st.isSymbolicLink()) return;
  if (st.isDirectory()) {
    chmodSync(path, 0o700);
    for (const name of readdirSync(path)) restrictTree(join(path, name));
  } else if (st.isFile()) {
    chmodSync(path, 0o600);
  }
}

/**
 * The embedded database's files are for this user alone. PGlite creates its files 0666 whatever
 * the umask, so the data directory is made 0700 (which keeps out everyone else, including from
 * files PGlite adds later) and what is in it 0600, before start and again once it has started
 * (`restrictTree`). New directories and files of this process are created 0700/0600 (umask 077).
 * A parent directory named `.rcflow` (the default) is made 0700 too; any other parent is the
 * operator's and left as it is.
 */
export function restrictEmbeddedData(pgliteDir: string): void {
  if (pgliteDir === 'memory') return;
  process.umask(0o077);
  mkdirSync(pgliteDir, { recursive: true, mode: 0o700 });
  restrictTree(pgliteDir);
  const parent = dirname(pgliteDir);
  if (basename(parent) === '.rcflow') chmodSync(parent, 0o700);
}

/** Loads configuration for a program, or prints what is wrong and exits 78 (EX_CONFIG). */
export function loadConfigOrExit(role: RcflowConfig['role']): RcflowConfig {
  try {
    return { ...loadConfig(process.env, { embeddedAuditKey }), role };
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78);
    }
    throw err;
  }
}
