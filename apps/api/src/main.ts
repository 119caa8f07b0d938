import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { SwaggerModule } from '@nestjs/swagger';
import { json, raw } from 'express';
import { exitOnSignals, loadConfigOrExit, restrictEmbeddedData } from '@rcflow/config';
import { enableProcessMetrics, startLogging } from '@rcflow/observability';
import { exitUnlessReachable } from '@rcflow/jobs';
import { SessionTransitions } from '@rcflow/sessions';
import { DataSource } from 'typeorm';
import { dirname } from 'node:path';
import { prepareDemo, runDemo } from './demo/demo-run';
import { ApiModule } from './api.module';
import { buildOpenApiDocument } from './openapi';
import { hardenHttp } from './edge/http-hardening';
import { accessLog } from './edge/access-log';
import { serveConsole } from './console/console-static';
import { ShutdownGate } from './shutdown-gate';

async function main(): Promise<void> {
  const config = loadConfigOrExit('api');
  // Redis may be down: the API keeps accepting session requests into the outbox (one warning line).
  await exitUnlessReachable('rcflow api', config, { redis: 'optional' });
  if (!config.database.url) restrictEmbeddedData(config.database.pgliteDir);
  const { logger: pino, nest: logger } = startLogging(config);
  enableProcessMetrics();
  // PGlite is single-process: the embedded run keeps the workers in the API process.
  const withWorker = process.argv.includes('--with-worker') || !config.database.url;
  // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- Nest declares its options bag as a class
  const app = await NestFactory.create<NestExpressApplication>(ApiModule.forRoot(config, { withWorker }), {
    bodyParser: false,
    logger,
  });
  // First of all: every request gets its id and its access line, whatever answers it.
  app.use(accessLog(pino));
  // PGlite has created or opened its files by now (0666 whatever the umask): this user's alone.
  if (!config.database.url) restrictEmbeddedData(config.database.pgliteDir);
  const demo = config.demo ? await prepareDemo(app.get(DataSource), config.audit.hmacKey, app.get(SessionTransitions)) : null;
  hardenHttp(app, config);
  const gate = app.get(ShutdownGate);
  app.use((req: Parameters<ShutdownGate['use']>[0], res: Parameters<ShutdownGate['use']>[1], next: () => void) => gate.use(req, res, next));
  // Ticket webhooks are verified on the bytes received: their bodies stay raw (any content type; 415 is the hook's to say).
  app.use('/v1/hooks', raw({ limit: config.http.bodyLimitBytes, type: () => true }));
  app.use(json({ limit: config.http.bodyLimitBytes, strict: true }));
  app.disable('x-powered-by');
  serveConsole(app);
  // Built from the routes' own metadata (see openapi.ts) when first asked for; at /docs and /docs/openapi.json.
  SwaggerModule.setup('docs', app, () => buildOpenApiDocument(app), { jsonDocumentUrl: 'docs/openapi.json' });
  // On SIGTERM the listener stays open for a moment answering 503 (Nest's close stops listening at
  // once, and a refused connection tells a client less than "this instance is going away").
  const refuseWindowMs = Math.min(2000, Math.floor(config.shutdownTimeoutMs / 4));
  exitOnSignals(app, config.shutdownTimeoutMs, logger, async () => {
    gate.close();
    await new Promise((resolve) => setTimeout(resolve, refuseWindowMs));
  });
  await app.listen(config.http.port, config.http.host);
  // Idle keep-alive connections outlive the usual proxy/load-balancer idle timeout (60 s), so a
  // client never reuses a socket the server is closing at that moment ("socket hang up"; Node's
  // default is 5 s). headersTimeout must exceed it.
  const server: import('node:http').Server = app.getHttpServer();
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  const url = await app.getUrl();
  new Logger('rcflow').log(`api listening on ${url} (docs at ${url}/docs)${withWorker ? ', workers in this process' : ''}`);
  if (demo)
    await runDemo(url.replace('[::1]', 'localhost'), demo, dirname(config.database.pgliteDir), (line) => process.stdout.write(`${line}\n`));
}

main().catch((err: unknown) => {
  process.stderr.write(`rcflow api failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
