import type { ArgumentsHost } from '@nestjs/common';
import { Writable } from 'node:stream';
import { NotFound } from '@rcflow/domain';
import { createLogger, installLogger } from '@rcflow/observability';
import { ErrorFilter } from './exception.filter';

/** The filter's host for one request, with a response that records what it was told. */
function host(reqId: string) {
  const sent: { status?: number; body?: unknown } = {};
  const res = {
    headersSent: false,
    setHeader: () => undefined,
    status(code: number) {
      sent.status = code;
      return this;
    },
    json(body: unknown) {
      sent.body = body;
    },
  };
  const req = { id: reqId, method: 'GET', path: '/v1/things' };
  const h = { switchToHttp: () => ({ getResponse: () => res, getRequest: () => req }) } as unknown as ArgumentsHost;
  return { h, sent };
}

describe('ErrorFilter', () => {
  const lines: Record<string, unknown>[] = [];
  beforeAll(() => {
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    installLogger(createLogger({ level: 'info', format: 'json', env: 'production', role: 'api' }, stream));
  });
  afterAll(() => installLogger(createLogger({ level: 'silent', format: 'json', env: 'test', role: 'api' })));

  it('answers an unexpected error with a 500 and logs it once with the request id', () => {
    const { h, sent } = host('req-500');
    new ErrorFilter().catch(new Error('db exploded'), h);
    expect(sent).toEqual({ status: 500, body: { error: { status: 500, code: 'internal_error', message: 'internal error' } } });
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'error',
        context: 'HTTP',
        reqId: 'req-500',
        method: 'GET',
        path: '/v1/things',
        msg: 'unexpected error',
        err: expect.objectContaining({ message: 'db exploded', stack: expect.stringContaining('Error: db exploded') }),
      }),
    ]);
  });

  it('logs nothing for an error it maps (a 4xx)', () => {
    lines.length = 0;
    const { h, sent } = host('req-404');
    new ErrorFilter().catch(new NotFound('thing', 'x'), h);
    expect(sent.status).toBe(404);
    expect(lines).toEqual([]);
  });
});
