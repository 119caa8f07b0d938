import { Global, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { createDataSource } from './data-source';

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
