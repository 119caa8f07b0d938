import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { NestFactory, Reflector } from '@nestjs/core';
import type { OpenAPIObject } from '@nestjs/swagger';
import { Validator } from '@seriousme/openapi-schema-validator';
import { join } from 'node:path';
import { loadConfig } from '@rcflow/config';
import { ApiModule } from './api.module';
import { PUBLIC } from './auth/auth.guard';
import { OWN_SHAPE, UNDESCRIBED, buildOpenApiDocument, documentedRoutes } from './openapi';

// The OpenAPI validator's own Ajv 8 with the draft-04 dialect OpenAPI 3.0 schema objects follow
// (the top-level ajv is eslint's 6.x); ajv-formats carries its own Ajv 8.
const validatorModules = join(__dirname, '../../../node_modules/@seriousme/openapi-schema-validator/node_modules');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Ajv04 = require(join(validatorModules, 'ajv-draft-04')) as new (options: object) => AjvLike;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const addFormats = require('ajv-formats') as (ajv: unknown) => void;

type Json = Record<string, unknown>;
interface AjvLike {
  addSchema(schema: object, key: string): unknown;
  compile(schema: object): { (data: unknown): boolean; errors?: unknown };
}
const VERBS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head'] as const;

let app: INestApplication;
let doc: OpenAPIObject;

function operations(): { path: string; verb: string; op: Json }[] {
  const out: { path: string; verb: string; op: Json }[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const verb of VERBS) {
      const op = (item as Json)[verb] as Json | undefined;
      if (op) out.push({ path, verb, op });
    }
  }
  return out;
}
const deref = (r: Json): Json => {
  const ref = r.$ref as string | undefined;
  if (!ref) return r;
  const [, , kind, name] = ref.split('/');
  return (doc.components as Record<string, Record<string, Json>>)[kind][name];
};

beforeAll(async () => {
  const config = loadConfig({ PGLITE_DIR: 'memory', AUDIT_HMAC_KEY: 'openapi-spec-audit-key-0123456789abcdef0123456789' });
  // Preview: the modules are scanned, nothing is instantiated (no database, no Redis).
  // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- Nest declares its options bag as a class
  app = await NestFactory.create(ApiModule.forRoot(config, { withWorker: false }), { preview: true, logger: false });
  doc = buildOpenApiDocument(app);
});
afterAll(async () => {
  await app?.close();
});

it('documents every route of the API', () => {
  // Every test below walks these: none may pass on an empty document.
  expect(operations().length).toBeGreaterThanOrEqual(81);
  const routes = documentedRoutes(app);
  expect(operations().filter(({ op }) => !routes.has(op.operationId as string))).toEqual([]);
});

it('is a valid OpenAPI 3.0 document', async () => {
  const res = await new Validator().validate(structuredClone(doc) as never);
  expect(res.errors ?? []).toEqual([]);
  expect(res.valid).toBe(true);
  expect(doc.openapi).toMatch(/^3\.0\./);
});

it('declares every path parameter, ids as UUIDs', () => {
  for (const { path, verb, op } of operations()) {
    const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    const declared = ((op.parameters as Json[] | undefined) ?? []).filter((p) => p.in === 'path');
    expect({ at: `${verb} ${path}`, names: declared.map((p) => p.name) }).toEqual({ at: `${verb} ${path}`, names });
    for (const p of declared) {
      expect(p.required).toBe(true);
      if (p.name === 'id' || String(p.name).endsWith('Id'))
        expect({ at: `${verb} ${path} ${String(p.name)}`, format: (p.schema as Json).format }).toEqual({
          at: `${verb} ${path} ${String(p.name)}`,
          format: 'uuid',
        });
    }
  }
});

it('documents the query parameters of the lists', () => {
  const q = (path: string) =>
    ((doc.paths[path].get!.parameters ?? []) as unknown as Json[]).filter((p) => p.in === 'query').map((p) => p.name);
  expect(q('/v1/sessions')).toEqual(expect.arrayContaining(['state', 'deviceId', 'viewerId', 'from', 'to', 'limit', 'cursor']));
  expect(q('/v1/audit')).toEqual(expect.arrayContaining(['sessionId', 'action', 'limit', 'cursor']));
  expect(q('/v1/audit/export')).toEqual(expect.arrayContaining(['sessionId', 'from', 'to']));
  const state = ((doc.paths['/v1/sessions'].get!.parameters ?? []) as unknown as Json[]).find((p) => p.name === 'state')!;
  expect((state.schema as Json).enum).toContain('active');
});

it('gives every operation its success answer with an example, and its error answers in the one error shape', () => {
  for (const { path, verb, op } of operations()) {
    const at = `${verb} ${path}`;
    const responses = op.responses as Record<string, Json>;
    const ok = Object.keys(responses).filter((s) => s.startsWith('2'));
    expect({ at, ok: ok.length > 0 }).toEqual({ at, ok: true });
    for (const s of ok.filter((x) => x !== '204')) {
      const content = responses[s].content as Record<string, Json> | undefined;
      expect({ at, s, content: content !== undefined }).toEqual({ at, s, content: true });
      for (const media of Object.values(content!)) {
        expect({ at, schema: media.schema !== undefined, example: media.example !== undefined }).toEqual({
          at,
          schema: true,
          example: true,
        });
      }
    }
    const errors = Object.keys(responses).filter((s) => /^[45]/.test(s));
    expect({ at, has429: errors.includes('429') }).toEqual({ at, has429: true });
    for (const s of errors.filter((e) => responses[e][OWN_SHAPE] !== true)) {
      const r = deref(responses[s]);
      expect(((r.content as Record<string, Json>)['application/json'].schema as Json).$ref).toBe('#/components/schemas/Error');
    }
    if (/\{[^}]+\}/.test(path)) expect({ at, has404: errors.includes('404') }).toEqual({ at, has404: true });
    if (op.requestBody || (op.parameters as Json[]).length > 0)
      expect({ at, has400: errors.includes('400') }).toEqual({ at, has400: true });
    if ((op.security as unknown[]).length > 0)
      expect({ at, errors: errors.filter((e) => e === '401' || e === '403') }).toEqual({ at, errors: ['401', '403'] });
    if (op.requestBody) {
      for (const media of Object.values((op.requestBody as Json).content as Record<string, Json>))
        expect({ at, bodyExample: media.example !== undefined }).toEqual({ at, bodyExample: true });
    }
  }
});

it('gives every operation an example: of its answer, its body or its path parameters', () => {
  const without = operations()
    .filter(({ op }) => {
      const media = (c: unknown) => Object.values((c ?? {}) as Record<string, Json>);
      const answers = Object.entries(op.responses as Record<string, Json>).filter(([s]) => s.startsWith('2'));
      return ![
        ...answers.flatMap(([, r]) => media(r.content)),
        ...media((op.requestBody as Json | undefined)?.content),
        ...(op.parameters as Json[]).filter((p) => p.in === 'path'),
      ].some((m) => m.example !== undefined);
    })
    .map(({ path, verb }) => `${verb} ${path}`);
  expect(without).toEqual([]);
});

it('describes every success answer with @ApiReturns', () => {
  const undescribed = operations()
    .filter(({ op }) => Object.values(op.responses as Record<string, Json>).some((r) => r.description === UNDESCRIBED))
    .map(({ path, verb }) => `${verb} ${path}`);
  expect(undescribed).toEqual([]);
});

it('asks for the API key exactly where the auth guard does', () => {
  const reflector = new Reflector();
  const routes = documentedRoutes(app);
  expect(doc.security).toBeUndefined();
  expect(doc.components?.securitySchemes?.apiKey).toMatchObject({ type: 'http', scheme: 'bearer' });
  expect(doc.components?.securitySchemes?.apiKey).not.toHaveProperty('bearerFormat');
  for (const { path, verb, op } of operations()) {
    const route = routes.get(op.operationId as string)!;
    const isPublic = reflector.getAllAndOverride<boolean | undefined>(PUBLIC, [route.handler, route.controller]) ?? false;
    expect({ at: `${verb} ${path}`, security: op.security }).toEqual({
      at: `${verb} ${path}`,
      security: isPublic ? [] : [{ apiKey: [] }, { apiKeyHeader: [] }],
    });
  }
  expect(doc.paths['/health'].get!.security).toEqual([]);
  expect(doc.paths['/v1/agent/enrol'].post!.security).toEqual([]);
  expect(doc.paths['/v1/hooks/{integrationId}'].post!.security).toEqual([]);
  expect(doc.paths['/v1/sessions'].post!.security).toEqual([{ apiKey: [] }, { apiKeyHeader: [] }]);
});

it('documents the status codes the routes answer', () => {
  expect(Object.keys(doc.paths['/v1/sessions'].post!.responses)).toContain('202');
  expect(Object.keys(doc.paths['/v1/sessions'].post!.responses)).not.toContain('201');
  expect(Object.keys(doc.paths['/v1/schedules/{id}'].delete!.responses)).toContain('204');
  expect(Object.keys(doc.paths['/v1/sessions/{id}/cancel'].post!.responses)).toContain('200');
});

it('gives examples that are valid against their schemas (and request bodies the route itself accepts)', () => {
  const ajv = new Ajv04({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema({ components: doc.components }, 'doc');
  const refTo = (s: Json) => JSON.parse(JSON.stringify(s).replace(/"#\/components\//g, '"doc#/components/')) as Json;
  const failures: unknown[] = [];
  let checked = 0;
  const check = (where: string, media: Json) => {
    if (media.example === undefined || !media.schema) return;
    checked++;
    const validate = ajv.compile(refTo(media.schema as Json));
    if (!validate(media.example)) failures.push({ where, example: media.example, errors: validate.errors });
  };
  const routes = documentedRoutes(app);
  for (const { path, verb, op } of operations()) {
    const at = `${verb} ${path}`;
    for (const [s, r] of Object.entries(op.responses as Record<string, Json>)) {
      for (const [type, media] of Object.entries((deref(r).content as Record<string, Json> | undefined) ?? {}))
        check(`${at} ${s} ${type}`, media);
    }
    for (const p of op.parameters as Json[]) check(`${at} parameter ${String(p.name)}`, p);
    const body = (op.requestBody as Json | undefined)?.content as Record<string, Json> | undefined;
    for (const [type, media] of Object.entries(body ?? {})) {
      check(`${at} request ${type}`, media);
      const zodBody = routes.get(op.operationId as string)!.body;
      if (zodBody && type === 'application/json') {
        const r = zodBody.safeParse(media.example);
        if (!r.success)
          failures.push({ at, example: media.example, issues: r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) });
      }
    }
  }
  expect(failures).toEqual([]);
  expect(checked).toBeGreaterThan(300);
});
