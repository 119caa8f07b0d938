import express, { json } from 'express';
import { Writable } from 'node:stream';
import request from 'supertest';
import { createLogger } from '@rcflow/observability';
import { accessLog, requestIdFor } from './access-log';

/** An Express app with the access log first, as main.ts mounts it, logging to memory. */
function appWithLog(level: 'info' | 'debug' = 'info') {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const app = express();
  app.use(accessLog(createLogger({ level, format: 'json', env: 'production', role: 'api' }, stream)));
  app.use(json());
  // A handler that logs the whole request, as careless code might: the secrets still do not get out.
  app.post('/v1/things', (req, res) => {
    (req as unknown as { principal: { id: string } }).principal = { id: 'p-1' };
    req.log.info({ headers: req.headers, body: req.body as unknown }, 'got it');
    res.status(201).json({ ok: true });
  });
  app.get('/health', (_req, res) => res.json({ status: 'ok' }));
  app.get('/metrics', (_req, res) => res.type('text/plain').send('# nothing'));
  return { app, lines };
}

describe('requestIdFor', () => {
  it('keeps 1 to 128 characters of A-Z a-z 0-9 . _ - and replaces anything else with a UUID', () => {
    expect(requestIdFor('abc-DEF_1.2')).toBe('abc-DEF_1.2');
    expect(requestIdFor('x'.repeat(128))).toBe('x'.repeat(128));
    for (const bad of ['x'.repeat(129), '', 'a b', 'a\nb', '<script>', undefined, ['a', 'b']])
      expect(requestIdFor(bad)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe('accessLog', () => {
  const KEY = 'rcf_00000000-0000-4000-8000-00000000000a.c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I';

  it('logs one line per request with the request id it echoes, and no key, cookie or secret from headers or body', async () => {
    const { app, lines } = appWithLog();
    const res = await request(app)
      .post('/v1/things?token=in-the-query')
      .set('Authorization', `Bearer ${KEY}`)
      .set('X-Api-Key', KEY)
      .set('Cookie', 'rcflow_console=cookie-value')
      .set('X-Hub-Signature-256', 'sha256=signature-value')
      .set('X-Request-Id', 'req-42')
      .send({ name: 'n', secret: 'body-secret', nested: { password: 'pw-value', apiKey: 'api-key-value' } });
    expect(res.status).toBe(201);
    expect(res.headers['x-request-id']).toBe('req-42');
    const text = JSON.stringify(lines);
    for (const leaked of ['c2VjcmV0', 'cookie-value', 'signature-value', 'body-secret', 'pw-value', 'api-key-value', 'in-the-query'])
      expect([leaked, text.includes(leaked)]).toEqual([leaked, false]);
    expect(lines).toEqual([
      expect.objectContaining({
        msg: 'got it',
        reqId: 'req-42',
        headers: expect.objectContaining({ authorization: '[redacted]', 'x-api-key': '[redacted]', cookie: '[redacted]' }),
        body: { name: 'n', secret: '[redacted]', nested: { password: '[redacted]', apiKey: '[redacted]' } },
      }),
      {
        level: 'info',
        time: expect.any(String),
        pid: process.pid,
        role: 'api',
        reqId: 'req-42',
        msg: 'request',
        method: 'POST',
        path: '/v1/things',
        status: 201,
        durationMs: expect.any(Number),
        principalId: 'p-1',
      },
    ]);
  });

  it('gives a request without a usable id a new one, and logs /health and /metrics at debug only', async () => {
    const { app, lines } = appWithLog('info');
    const res = await request(app).get('/nowhere').set('X-Request-Id', 'not valid!');
    expect(res.status).toBe(404);
    const id = res.headers['x-request-id'];
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await request(app).get('/health');
    await request(app).get('/metrics');
    expect(lines).toEqual([expect.objectContaining({ reqId: id, path: '/nowhere', status: 404, msg: 'request' })]);
    const debug = appWithLog('debug');
    await request(debug.app).get('/health');
    expect(debug.lines).toEqual([expect.objectContaining({ level: 'debug', path: '/health', status: 200 })]);
  });
});
