import { Global, Inject, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { createDataSource } from './data-source';
import { enablePreparedStatements } from './prepared';

interface PgClient {
  on(event: 'error', fn: (err: Error) => void): void;
}
interface PgPool {
  on(event: 'connect', fn: (client: PgClient) => void): void;
  _clients?: PgClient[];
}

/**
 * A connection the server drops while it is checked out (a restart, a failover,
 * pg_terminate_backend) emits 'error' on its client; unheard, that kills the process. The query
 * on it fails and its transaction rolls back, the job retries, and the pool discards the client.
 */
function survivePgDisconnects(ds: DataSource): void {
  const logger = new Logger('Database');
  const pool = (ds.driver as unknown as { master?: PgPool }).master;
  if (!pool) return;
  const listen = (client: PgClient) => client.on('error', (err) => logger.warn(`connection lost: ${err.message}`));
  for (const client of pool._clients ?? []) listen(client);
  pool.on('connect', listen);
}

/** Provides an initialized DataSource (PostgreSQL or embedded PGlite) and closes it on shutdown. */
@Global()
@Module({
  providers: [
    {
      provide: DataSource,
      inject: [RCFLOW_CONFIG],
      useFactory: async (config: RcflowConfig) => {
        const ds = createDataSource({ ...config.database, applicationName: `rcflow-${config.role}` });
        await ds.initialize();
        if (config.database.url) {
          survivePgDisconnects(ds);
          enablePreparedStatements(ds);
        }
        if (!config.database.url) await ds.runMigrations({ transaction: 'each' });
        const pending = await ds.showMigrations();
        if (pending) {
          await ds.destroy();
          throw new Error('the database has pending migrations; run `npm run migration:run` before starting rcflow');
        }
        return ds;
      },
    },
  ],
  exports: [DataSource],
})
export class DatabaseModule implements OnApplicationShutdown {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
