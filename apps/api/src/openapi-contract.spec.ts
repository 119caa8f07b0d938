import 'reflect-metadata';
import { Controller, Get, MessageEvent, Module, Param, Query, Sse } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ApiOkResponse, ApiServiceUnavailableResponse, type OpenAPIObject } from '@nestjs/swagger';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Observable, of } from 'rxjs';
import { z } from 'zod';
import { Public } from './auth/auth.guard';
import { ApiReturns } from './common/api-docs';
import { Zod, idParam, limit } from './common/validation';
import { OWN_SHAPE, UNDESCRIBED, buildOpenApiDocument } from './openapi';
import { pageOf } from './openapi-schemas';

/** What a new route gets from the document without more than `@ApiReturns` (the contract for routes added later). */
const thing = z.object({ id: z.uuid(), name: z.string() }).meta({ id: 'Thing' });
const thingsQuery = z.strictObject({ name: z.string().optional(), limit });

@Controller('v1/things')
class ThingsController {
  @Get()
  @ApiReturns(pageOf(thing))
  list(@Query(new Zod(thingsQuery, 'query')) q: z.infer<typeof thingsQuery>) {
    return { items: [], nextCursor: null, q };
  }

  // A terminus-style route: its own swagger decorators, a 503 in its own shape, public.
  @Get(':id/ready')
  @Public()
  @ApiOkResponse({ schema: { type: 'object', properties: { status: { type: 'string', example: 'ok' } } } })
  @ApiServiceUnavailableResponse({ schema: { type: 'object', properties: { status: { type: 'string', example: 'error' } } } })
  ready(@Param(new Zod(idParam, 'path')) p: { id: string }) {
    return { status: 'ok', p };
  }

  @Sse('events')
  @ApiReturns({ type: 'string', example: 'id: 1\nevent: thing\ndata: {}\n\n' }, { contentType: 'text/event-stream' })
  events(): Observable<MessageEvent> {
    return of({ data: {} });
  }

  @Get('bare')
  bare() {
    return {};
  }
}

@Module({ controllers: [ThingsController] })
class ThingsModule {}

let doc: OpenAPIObject;
beforeAll(async () => {
  // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- Nest declares its options bag as a class
  const app = await NestFactory.create(ThingsModule, { preview: true, logger: false });
  doc = buildOpenApiDocument(app);
  await app.close();
});

it('gives a new route its parameters, security, answers and errors from its pipes and decorators', async () => {
  const res = await new Validator().validate(structuredClone(doc) as never);
  expect(res.errors ?? []).toEqual([]);
  const list = doc.paths['/v1/things'].get!;
  expect(list.parameters).toEqual([
    expect.objectContaining({ name: 'name', in: 'query', required: false }),
    expect.objectContaining({
      name: 'limit',
      in: 'query',
      required: false,
      schema: expect.objectContaining({ type: 'integer', default: 50 }),
    }),
  ]);
  expect(list.security).toEqual([{ apiKey: [] }, { apiKeyHeader: [] }]);
  expect(Object.keys(list.responses)).toEqual(['200', '400', '401', '403', '429', '503']);

  const ready = doc.paths['/v1/things/{id}/ready'].get!;
  expect(ready.security).toEqual([]);
  expect(ready.parameters).toEqual([
    expect.objectContaining({ name: 'id', in: 'path', required: true, schema: expect.objectContaining({ format: 'uuid' }) }),
  ]);
  expect(ready.responses['503']).toMatchObject({ [OWN_SHAPE]: true, content: { 'application/json': { example: { status: 'error' } } } });
  expect(ready.responses['404']).toEqual({ $ref: '#/components/responses/NotFound' });

  expect(doc.paths['/v1/things/events'].get!.responses['200']).toMatchObject({
    content: { 'text/event-stream': { example: expect.stringContaining('event: thing') } },
  });
  expect(doc.paths['/v1/things/bare'].get!.responses['200']).toMatchObject({ description: UNDESCRIBED });
});
