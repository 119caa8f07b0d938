import 'reflect-metadata';
import { DynamicModule, Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ConfigModule, RcflowConfig, exitOnSignals, loadConfigOrExit } from '@rcflow/config';
import { enableProcessMetrics, startLogging } from '@rcflow/observability';
import { DatabaseModule } from '@rcflow/database';
import { exitUnlessReachable } from '@rcflow/jobs';
import { WorkerModule } from '@rcflow/workflow';

/** The worker is the application without HTTP. */
@Module({})
class WorkerAppModule {
  static forRoot(config: RcflowConfig): DynamicModule {
    return { module: WorkerAppModule, imports: [ConfigModule.forRoot(config), DatabaseModule, WorkerModule.forRoot(config)] };
  }
}

async function main(): Promise<void> {
  const config = loadConfigOrExit('worker');
  const { nest: logger } = startLogging(config);
  enableProcessMetrics();
  if (!config.database.url) {
    process.stderr.write('the worker needs DATABASE_URL: embedded PGlite is single-process, run `npm run start:all` instead\n');
    process.exit(78);
  }
  await exitUnlessReachable('rcflow worker', config);
  // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- Nest declares its options bag as a class
  const app = await NestFactory.createApplicationContext(WorkerAppModule.forRoot(config), {
    logger,
  });
  exitOnSignals(app, config.shutdownTimeoutMs, logger);
  await app.init();
  new Logger('rcflow').log(`worker running, concurrency ${config.jobs.concurrency}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`rcflow worker failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
