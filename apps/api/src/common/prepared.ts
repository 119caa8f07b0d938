import type { DataSource } from 'typeorm';

interface PgPool {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>;
}

/**
 * Runs one statement outside any transaction as a named prepared statement, which PostgreSQL
 * parses and plans once per connection instead of on every call: for the intake statement that was
 * more than half of the server's CPU per request. `name` must always come with the same `text`.
 * Goes through the DataSource's pg pool (skipping TypeORM's query runner, which a single statement
 * does not need); on embedded PGlite, which has no such pool, it is an ordinary query.
 */
export async function queryPrepared<T>(dataSource: DataSource, name: string, text: string, values: unknown[]): Promise<T[]> {
  const pool = (dataSource.driver as unknown as { master?: PgPool }).master;
  if (!pool) return dataSource.query(text, values);
  return (await pool.query({ name, text, values })).rows as T[];
}
