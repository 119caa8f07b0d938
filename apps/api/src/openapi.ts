import type { INestApplication, Type } from '@nestjs/common';
import { RequestMethod } from '@nestjs/common';
import { HTTP_CODE_METADATA, METHOD_METADATA, ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';
import { ModulesContainer } from '@nestjs/core';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { z } from 'zod';
import { PUBLIC } from './auth/auth.guard';
import {
  API_ERRORS,
  API_INPUT,
  API_RETURNS,
  type InputDocs,
  type OpenApiSchema,
  type ReturnsEntry,
  STATUS_TEXT,
  openApiSchema,
  sampleOf,
} from './common/api-docs';
import { Zod } from './common/validation';

/** What an answer without @ApiReturns says (the spec refuses it). */
export const UNDESCRIBED = 'Not described yet: add @ApiReturns to the route';

/** Marks an error response a route declares with @ApiReturns in a shape of its own. */
export const OWN_SHAPE = 'x-rcflow-own-shape';

/** The name of the API-key security scheme. */
export const API_KEY_SCHEME = 'apiKey';
/** The same key in the X-API-Key header (the guard takes either). */
export const API_KEY_HEADER_SCHEME = 'apiKeyHeader';
/** What an authenticated operation requires: the key as a bearer token or in X-API-Key. */
const KEY_REQUIRED: Record<string, string[]>[] = [{ [API_KEY_SCHEME]: [] }, { [API_KEY_HEADER_SCHEME]: [] }];

/** The error responses, one component each, all with the one error shape. */
const ERROR_RESPONSES: Record<number, { name: string; code: string; message: string; details?: unknown }> = {
  400: {
    name: 'ValidationFailed',
    code: 'validation_failed',
    message: 'invalid body: deviceId: must be a UUID',
    details: [{ path: 'deviceId', message: 'must be a UUID' }],
  },
  401: { name: 'Unauthenticated', code: 'unauthenticated', message: 'a valid API key is required (Authorization: Bearer <key>)' },
  403: { name: 'Forbidden', code: 'forbidden', message: 'alice lacks the permission admin.write' },
  404: {
    name: 'NotFound',
    code: 'not_found',
    message: 'session 3f2a7c9e-1b4d-4e8a-9c6f-2d5e8b1a7f30 does not exist or is outside your scope',
  },
  409: { name: 'Conflict', code: 'conflict', message: 'session is already ended', details: { state: 'ended' } },
  413: { name: 'PayloadTooLarge', code: 'payload_too_large', message: 'request body is too large' },
  415: { name: 'UnsupportedMediaType', code: 'unsupported_media_type', message: 'the body must be JSON' },
  422: { name: 'Unprocessable', code: 'unprocessable', message: 'collectionIds name collections that do not exist: …' },
  429: {
    name: 'RateLimited',
    code: 'rate_limited',
    message: 'too many requests; retry after 3 s',
    details: { retryAfterSeconds: 3 },
  },
  503: {
    name: 'ShuttingDown',
    code: 'shutting_down',
    message: 'this rcflow process is shutting down; retry against another instance',
  },
};

const ERROR_SCHEMA: OpenApiSchema = {
  type: 'object',
  description: 'Every error rcflow answers: { error: { status, code, message, details? } }.',
  required: ['error'],
  additionalProperties: false,
  properties: {
    error: {
      type: 'object',
      required: ['status', 'code', 'message'],
      additionalProperties: false,
      properties: {
        status: { type: 'integer', minimum: 400, maximum: 599, description: 'The HTTP status, repeated' },
        code: { type: 'string', description: 'Stable machine-readable code, e.g. validation_failed, not_found, conflict' },
        message: { type: 'string', description: 'What went wrong, for a person' },
        details: {
          description: 'For 400: each field at fault ({path, message}); for 429: {retryAfterSeconds}; for 409: what conflicts',
          oneOf: [
            {
              type: 'array',
              items: {
                type: 'object',
                required: ['path', 'message'],
                properties: { path: { type: 'string' }, message: { type: 'string' } },
              },
            },
            { type: 'object', additionalProperties: true },
          ],
        },
      },
    },
  },
};

export interface Route {
  controller: Type;
  method: string;
  handler: (...args: unknown[]) => unknown;
}

type ArgKind = 'body' | 'query' | 'param';
/** Nest's route argument types (the first part of each ROUTE_ARGS_METADATA key) this document reads. */
const ARG_KINDS: Record<string, ArgKind | undefined> = {
  [RouteParamtypes.BODY]: 'body',
  [RouteParamtypes.QUERY]: 'query',
  [RouteParamtypes.PARAM]: 'param',
};

interface ZodArg {
  type: ArgKind;
  /** The name in @Param('name') / @Query('name'), when the pipe validates one value. */
  data: string | undefined;
  schema: z.ZodType;
}

const operationId = (controllerKey: string, methodKey: string) => `${controllerKey}_${methodKey}`;

/** Every route handler of the application by its OpenAPI operationId. */
function routesOf(app: INestApplication): Map<string, Route> {
  const routes = new Map<string, Route>();
  for (const mod of app.get(ModulesContainer).values()) {
    for (const wrapper of mod.controllers.values()) {
      const controller = wrapper.metatype as Type | null;
      if (!controller) continue;
      for (
        let proto = controller.prototype as object | null;
        proto && proto !== Object.prototype;
        proto = Object.getPrototypeOf(proto) as object | null
      ) {
        for (const method of Object.getOwnPropertyNames(proto)) {
          const handler = Object.getOwnPropertyDescriptor(proto, method)?.value as unknown;
          if (typeof handler !== 'function' || Reflect.getMetadata(METHOD_METADATA, handler) === undefined) continue;
          const id = operationId(controller.name, method);
          if (!routes.has(id)) routes.set(id, { controller, method, handler: handler as Route['handler'] });
        }
      }
    }
  }
  return routes;
}

/** What the auth guard reads: a handler's @Public() wins over its controller's. */
export function isPublicRoute(controller: Type, handler: object): boolean {
  const own = Reflect.getMetadata(PUBLIC, handler) as boolean | undefined;
  return own ?? (Reflect.getMetadata(PUBLIC, controller) as boolean | undefined) ?? false;
}

function zodArgs(route: Route): ZodArg[] {
  const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, route.controller, route.method) ?? {}) as Record<
    string,
    { data?: unknown; pipes?: unknown[] }
  >;
  const out: ZodArg[] = [];
  for (const [key, arg] of Object.entries(args)) {
    const type = ARG_KINDS[key.split(':')[0] ?? ''];
    const pipe = (arg.pipes ?? []).find((p): p is Zod<z.ZodType> => p instanceof Zod);
    if (type && pipe) out.push({ type, data: typeof arg.data === 'string' ? arg.data : undefined, schema: pipe.schema });
  }
  return out;
}

/** The properties of an object schema (or of the object a transform/refinement wraps), with which are required. */
function objectParts(s: OpenApiSchema): { properties: Record<string, OpenApiSchema>; required: Set<string> } {
  if (s.properties)
    return { properties: s.properties as Record<string, OpenApiSchema>, required: new Set((s.required as string[] | undefined) ?? []) };
  for (const part of (s.allOf as OpenApiSchema[] | undefined) ?? []) {
    if (part.properties) return objectParts(part);
  }
  return { properties: {}, required: new Set() };
}

/** A request body needs sending unless its schema accepts none (validation reads a missing body as {}). */
const bodyRequired = (schema: z.ZodType) => !schema.safeParse({}).success;

function paramDescription(path: string, name: string): string {
  const segments = path.split('/');
  const at = segments.indexOf(`{${name}}`);
  const owner = at > 0 ? segments[at - 1] : undefined;
  if (name === 'id' && owner && !owner.startsWith('{')) return `The id of the ${owner.replace(/s$/, '').replace(/-/g, ' ')}`;
  return `The ${name.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase()}`;
}

/**
 * The OpenAPI 3.0 document of the API: Nest's scan of the controllers, completed from the same
 * metadata the routes run with: the `Zod` pipes (path, query and body schemas), `@Public()` (no
 * security requirement), `@HttpCode` and `@ApiReturns` (the answers), and the error responses
 * every route may give. Works on an application created with `{ preview: true }` (no database).
 */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('rcflow')
    .setDescription(
      'Orchestrates remote-control, remote-assistance and remote-desktop sessions to managed computers. ' +
        'Authenticate with an API key: `Authorization: Bearer rcf_<key id>.<secret>`. Every error has the shape ' +
        '`{ "error": { "status", "code", "message", "details" } }`.',
    )
    .setVersion('0.1.0')
    .addSecurity(API_KEY_SCHEME, {
      type: 'http',
      scheme: 'bearer',
      description: 'An rcflow API key: `Authorization: Bearer rcf_<key id>.<secret>`',
    })
    .addSecurity(API_KEY_HEADER_SCHEME, {
      type: 'apiKey',
      in: 'header',
      name: 'X-API-Key',
      description: 'The same API key, `rcf_<key id>.<secret>`, in the X-API-Key header',
    })
    .build();
  const doc = SwaggerModule.createDocument(app, config, { operationIdFactory: operationId });
  const routes = routesOf(app);
  const components = (doc.components ??= {});
  const schemas = (components.schemas ??= {}) as Record<string, OpenApiSchema>;
  const convert = (schema: z.ZodType, io: 'input' | 'output', prefix: string): OpenApiSchema => {
    const { schema: s, defs } = openApiSchema(schema, io, prefix);
    Object.assign(schemas, defs);
    return s;
  };
  schemas.Error = ERROR_SCHEMA;
  const responses = (components.responses ??= {});
  for (const [status, e] of Object.entries(ERROR_RESPONSES)) {
    responses[e.name] = {
      description: STATUS_TEXT[Number(status)] ?? e.name,
      content: {
        'application/json': {
          schema: { $ref: '#/components/schemas/Error' },
          example: { error: { status: Number(status), code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) } },
        },
      },
    };
  }
  delete doc.security;

  for (const [path, item] of Object.entries(doc.paths)) {
    for (const verb of ['get', 'put', 'post', 'delete', 'patch', 'options', 'head'] as const) {
      const op = item[verb];
      if (!op) continue;
      const route = op.operationId ? routes.get(op.operationId) : undefined;
      if (!route) throw new Error(`OpenAPI: no route handler for ${verb.toUpperCase()} ${path} (${op.operationId})`);
      const prefix = op.operationId!.replace(/Controller_/, '_');
      const isPublic = isPublicRoute(route.controller, route.handler);
      const args = zodArgs(route);
      const input = (Reflect.getMetadata(API_INPUT, route.handler) as InputDocs | undefined) ?? {};
      const params = (op.parameters ??= []) as unknown as Record<string, unknown>[];

      // Path parameters: every {name} of the path, typed from the route's Zod pipe.
      const pathSchemas: Record<string, OpenApiSchema> = {};
      for (const a of args.filter((x) => x.type === 'param')) {
        const s = convert(a.schema, 'input', prefix);
        if (a.data) pathSchemas[a.data] = s;
        else Object.assign(pathSchemas, objectParts(s).properties);
      }
      if (input.params) Object.assign(pathSchemas, objectParts(convert(input.params, 'input', prefix)).properties);
      const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
      const others = params.filter((p) => p.in !== 'path');
      const pathParams = names.map((name) => {
        const { description, ...schema } = pathSchemas[name] ?? { type: 'string' };
        return {
          name,
          in: 'path',
          required: true,
          description: (description as string | undefined) ?? paramDescription(path, name),
          schema,
          example: sampleOf(schema, schemas),
        };
      });

      // Query parameters: the properties of the route's query schema (replacing undocumented ones of the same name).
      const queryZod = input.query ?? args.find((a) => a.type === 'query' && !a.data)?.schema;
      let queryParams: Record<string, unknown>[] = [];
      if (queryZod) {
        const { properties, required } = objectParts(convert(queryZod, 'input', prefix));
        queryParams = Object.entries(properties).map(([name, s]) => {
          const { description, ...schema } = s;
          return { name, in: 'query', required: required.has(name), ...(description ? { description } : {}), schema };
        });
      }
      for (const a of args.filter((x) => x.type === 'query' && x.data)) {
        const { description, ...schema } = convert(a.schema, 'input', prefix);
        queryParams.push({
          name: a.data,
          in: 'query',
          required: !a.schema.safeParse(undefined).success,
          ...(description ? { description } : {}),
          schema,
        });
      }
      const queryNames = new Set(queryParams.map((p) => p.name));
      const headerParams = Object.entries(input.headers ?? {}).map(([name, zod]) => {
        const { description, ...schema } = convert(zod, 'input', prefix);
        return { name, in: 'header', required: !zod.safeParse(undefined).success, ...(description ? { description } : {}), schema };
      });
      const headerNames = new Set(headerParams.map((p) => p.name.toLowerCase()));
      const kept = others
        .filter((p) => !(p.in === 'query' && queryNames.has(p.name as string)))
        .filter((p) => !(p.in === 'header' && headerNames.has(String(p.name).toLowerCase())))
        .map((p) => (p.schema || p.content ? p : { ...p, schema: { type: 'string' } }));
      op.parameters = [...pathParams, ...queryParams, ...headerParams, ...kept] as typeof op.parameters;

      // The request body: the route's Zod body schema, as the caller sends it.
      const bodyZod = input.body ?? args.find((a) => a.type === 'body' && !a.data)?.schema;
      if (input.rawBody) {
        op.requestBody = {
          required: true,
          content: { [input.rawBody.contentType]: { schema: input.rawBody.schema, example: input.rawBody.example } },
        };
      } else if (bodyZod) {
        const schema = convert(bodyZod, 'input', prefix);
        op.requestBody = {
          required: bodyRequired(bodyZod),
          content: { 'application/json': { schema, example: input.bodyExample ?? sampleOf(schema, schemas, true) } },
        };
      } else if (op.requestBody && 'content' in op.requestBody) {
        for (const media of Object.values(op.requestBody.content))
          media.example ??= sampleOf((media.schema ?? {}) as OpenApiSchema, schemas, true);
      }

      // Successful answers: @ApiReturns, else Nest's status with an undescribed JSON body.
      const declared = (Reflect.getMetadata(API_RETURNS, route.handler) as ReturnsEntry[] | undefined) ?? [];
      const httpCode = Reflect.getMetadata(HTTP_CODE_METADATA, route.handler) as number | undefined;
      const requestMethod = Reflect.getMetadata(METHOD_METADATA, route.handler) as RequestMethod;
      const defaultStatus = httpCode ?? (requestMethod === RequestMethod.POST ? 201 : 200);
      const out: Record<string, unknown> = {};
      // Without @ApiReturns, what @nestjs/swagger's own response decorators said (e.g. terminus' @HealthCheck()).
      const scanned = op.responses as Record<
        string,
        { description?: string; content?: Record<string, { schema?: OpenApiSchema; example?: unknown }> }
      >;
      const fromDecorators: ReturnsEntry[] = Object.entries(scanned).flatMap(([status, r]) =>
        Object.entries(r.content ?? {}).flatMap(([contentType, m]) =>
          m.schema ? [{ status: Number(status), schema: m.schema, contentType, description: r.description, example: m.example }] : [],
        ),
      );
      const entries: ReturnsEntry[] =
        declared.length > 0
          ? declared
          : fromDecorators.length > 0
            ? fromDecorators
            : [{ schema: { type: 'object' }, description: UNDESCRIBED }];
      for (const e of [...entries].reverse()) {
        const status = e.status ?? defaultStatus;
        if (httpCode !== undefined && e.status !== undefined && e.status !== httpCode && e.status < 300) {
          throw new Error(`OpenAPI: ${op.operationId} declares ${e.status} but @HttpCode says ${httpCode}`);
        }
        const key = String(status);
        const existing = (out[key] as
          { description: string; content?: Record<string, unknown>; headers?: Record<string, unknown> } | undefined) ?? {
          description: e.description ?? STATUS_TEXT[status] ?? 'OK',
        };
        if (e.schema !== null) {
          const schema = e.schema instanceof z.ZodType ? convert(e.schema, 'output', prefix) : e.schema;
          existing.content = {
            ...existing.content,
            [e.contentType ?? 'application/json']: { schema, example: e.example ?? sampleOf(schema, schemas) },
          };
        }
        if (e.headers) {
          existing.headers = {
            ...existing.headers,
            ...Object.fromEntries(Object.entries(e.headers).map(([h, d]) => [h, { description: d, schema: { type: 'string' } }])),
          };
        }
        // An error answer the route declares itself: not the one error shape (the test lets these through).
        if (status >= 400) Object.assign(existing, { [OWN_SHAPE]: true });
        out[key] = existing;
      }

      // Error answers: derived from the route, plus its @ApiErrors.
      const errors = new Set<number>([429, 503]);
      if (args.length > 0 || bodyZod || queryZod || input.params || op.parameters.length > 0) errors.add(400);
      if (op.requestBody) errors.add(413);
      if (!isPublic) {
        errors.add(401);
        errors.add(403);
        if (verb !== 'get') errors.add(409);
      }
      if (names.length > 0) errors.add(404);
      for (const s of (Reflect.getMetadata(API_ERRORS, route.handler) as number[] | undefined) ?? []) errors.add(s);
      for (const s of [...errors].sort()) {
        const e = ERROR_RESPONSES[s];
        if (!e) throw new Error(`OpenAPI: ${op.operationId} declares error ${s}, which has no error response component`);
        out[String(s)] ??= { $ref: `#/components/responses/${e.name}` };
      }
      op.responses = out as typeof op.responses;

      // Security: the API key wherever the guard asks for one.
      op.security = isPublic ? [] : KEY_REQUIRED.map((r) => ({ ...r }));
    }
  }
  return doc;
}

/** Every route by operationId with the zod schema its body is validated with (for tests of the examples). */
export function documentedRoutes(app: INestApplication): Map<string, Route & { body: z.ZodType | undefined }> {
  const out = new Map<string, Route & { body: z.ZodType | undefined }>();
  for (const [id, route] of routesOf(app)) {
    const input = (Reflect.getMetadata(API_INPUT, route.handler) as InputDocs | undefined) ?? {};
    const body = input.body ?? zodArgs(route).find((a) => a.type === 'body' && !a.data)?.schema;
    out.set(id, { ...route, body });
  }
  return out;
}
