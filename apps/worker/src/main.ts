import 'reflect-metadata';
import { DynamicModule, Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { ConfigModule, RcflowConfig, exitOnSignals, loadConfigOrExit } from '@rcflow/config';
import { MetricsModule, enableProcessMetrics, startLogging } from '@rcflow/observability';
import { DatabaseModule } from '@rcflow/database';
import { Readiness, exitUnlessReachable } from '@rcflow/jobs';
import { WorkerModule } from '@rcflow/workflow';
import { WorkerOpsModule } from './ops.module';

/** The worker is the application without the API; with WORKER_HTTP_PORT (not 0) it serves its ops routes (WorkerOpsModule). */
@Module({})
class WorkerAppModule {
  static forRoot(config: RcflowConfig): DynamicModule {
    return {
      module: WorkerAppModule,
      imports: [
        ConfigModule.forRoot(config),
        DatabaseModule,
        WorkerModule.forRoot(config),
        // GET /metrics on the ops listener takes METRICS_TOKEN only (the worker has no API keys to check).
        ...(config.workerHttp.port ? [WorkerOpsModule, MetricsModule.forRoot(config.metrics.token)] : []),
      ],
    };
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
  const { host, port } = config.workerHttp;
  const module = WorkerAppModule.forRoot(config);
  const app = port
    ? // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- Nest declares its options bag as a class
      await NestFactory.create<NestExpressApplication>(module, { logger, bodyParser: false })
    : // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- Nest declares its options bag as a class
      await NestFactory.createApplicationContext(module, { logger });
  // Readiness says 503 from the signal on, while jobs drain and before anything closes.
  exitOnSignals(app, config.shutdownTimeoutMs, logger, () => {
    if (port) app.get(Readiness, { strict: false }).markDraining();
    return Promise.resolve();
  });
  let ops = '';
  if (port) {
    const http = app as NestExpressApplication;
    http.disable('x-powered-by');
    try {
      await http.listen(port, host);
    } catch (err) {
      process.stderr.write(
        `rcflow worker cannot start: WORKER_HTTP_PORT ${port} on WORKER_HTTP_HOST ${host}: ${(err as Error).message} (another worker on this host? give each its own port, or 0 for none)\n`,
      );
      process.exit(1);
    }
    ops = `, health on http://${host.includes(':') ? `[${host}]` : host}:${port}/health/ready`;
  } else await app.init();
  new Logger('rcflow').log(`worker running, concurrency ${config.jobs.concurrency}${ops}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`rcflow worker failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
