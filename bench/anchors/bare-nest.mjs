// Anchor for intake: the same framework as the API (NestJS 12 on Express, JSON body parser with
// the same limit, no x-powered-by) with one route, POST /v1/sessions, answering 202 with a body
// shaped like rcflow's. No guard, no validation, no database.
//   PORT=3999 node bench/anchors/bare-nest.mjs   (prints "bare listening on …")
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Body, Controller, HttpCode, Module, Post } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
const { json } = require('express');

class BareController {
  create(body) {
    const id = randomUUID();
    return { id, state: 'requested', url: `/v1/sessions/${id}`, deviceId: body?.deviceId };
  }
}
// Decorators applied by hand (this file is plain JavaScript).
const proto = BareController.prototype;
const desc = Object.getOwnPropertyDescriptor(proto, 'create');
Body()(proto, 'create', 0);
Post('sessions')(proto, 'create', desc);
HttpCode(202)(proto, 'create', desc);
Controller('v1')(BareController);

class BareModule {}
Module({ controllers: [BareController] })(BareModule);

const app = await NestFactory.create(BareModule, { bodyParser: false, logger: ['error', 'warn'] });
app.use(json({ limit: 16384, strict: true }));
app.getHttpAdapter().getInstance().disable('x-powered-by');
await app.listen(Number(process.env.PORT ?? 3999), '127.0.0.1');
process.stdout.write(`bare listening on ${await app.getUrl()}\n`);
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
