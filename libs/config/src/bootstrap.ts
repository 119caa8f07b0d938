import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { ConfigError, RcflowConfig, loadConfig } from './config';

/** The embedded run keeps its own audit key beside its PGlite data, created on first start. */
function embeddedAuditKey(): string {
  // eslint-disable-next-line @typescript-eslint/prefer-nullish-coalescing -- an empty PGLITE_DIR means unset too
  const file = join(dirname(process.env.PGLITE_DIR || '.rcflow/pglite'), 'audit.key');
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
  }
  chmodSync(file, 0o600);
  return readFileSync(file, 'utf8').trim();
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
