import { Client } from 'pg';
import { createDataSource } from '../../libs/database/src/data-source';

/** This run's id, unique per `npm test`, naming its databases and Redis prefixes. */
export const RUN = process.env.RCFLOW_TEST_RUN ?? `t${Date.now()}_${process.pid}`;
export const PG_ADMIN_URL = process.env.PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const SHARED_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** A key long enough for the config schema; tests only. */
/** TICKET_SECRETS_KEY of test stacks (32 bytes, hex). */
export const TEST_TICKET_KEY = '0123456789abcdef'.repeat(4);
export const TEST_AUDIT_KEY = 'test-audit-key-0123456789abcdef0123456789abcdef';

export function dbUrl(name: string): string {
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

async function admin<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** A new, migrated database of this run, for one spec file; returns its URL. */
export async function freshDatabase(tag: string): Promise<string> {
  const name = `rcflow_${RUN}_${tag}`
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 63);
  await admin(async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${name}`);
  });
  const url = dbUrl(name);
  const ds = createDataSource({ url, pgliteDir: '', poolSize: 2 });
  await ds.initialize();
  await ds.runMigrations({ transaction: 'each' });
  await ds.destroy();
  return url;
}

/** Drops every database this run made. */
export async function dropRunDatabases(): Promise<void> {
  await admin(async (c) => {
    const { rows } = await c.query(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`rcflow_${RUN.toLowerCase()}%`]);
    for (const r of rows) await c.query(`DROP DATABASE IF EXISTS ${r.datname} WITH (FORCE)`);
  });
}

export const queuePrefix = (tag: string) => `rcflow_test_${RUN}_${tag}`;
