import 'reflect-metadata';
import { DataSource, DataSourceOptions } from 'typeorm';
import { ENTITIES } from './entities';
import { MIGRATIONS } from './migrations';

export interface DatabaseTarget {
  /** postgres:// URL; null = the embedded PGlite database in `pgliteDir`. */
  url: string | null;
  pgliteDir: string;
  poolSize: number;
  /** Shown in pg_stat_activity, so operators (and the fault suite) can tell api from worker connections. */
  applicationName?: string;
}

/** Builds the DataSource for PostgreSQL, or for embedded PGlite when no URL is given. */
export function dataSourceOptions(target: DatabaseTarget): DataSourceOptions {
  const common = {
    type: 'postgres' as const,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsRun: false,
    synchronize: false,
    logging: false,
    uuidExtension: 'pgcrypto' as const,
    installExtensions: false,
  };
  if (target.url) {
    return { ...common, url: target.url, extra: { max: target.poolSize, application_name: target.applicationName ?? 'rcflow' } };
  }
  // PGlite is loaded lazily so a PostgreSQL deployment never needs the WASM build.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { PGliteDriver } = require('typeorm-pglite') as typeof import('typeorm-pglite');
  const dataDir = target.pgliteDir === 'memory' ? undefined : target.pgliteDir;
  return { ...common, driver: new PGliteDriver({ dataDir }).driver };
}

export function createDataSource(target: DatabaseTarget): DataSource {
  return new DataSource(dataSourceOptions(target));
}

/** Used by the TypeORM CLI (migration:generate) against a real PostgreSQL. */
export default new DataSource(
  dataSourceOptions({ url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/rcflow_dev', pgliteDir: '', poolSize: 2 }),
);
