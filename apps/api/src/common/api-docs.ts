import { SetMetadata } from '@nestjs/common';
import { z } from 'zod';

/**
 * What /docs says about a route beyond what its decorators already tell (the OpenAPI document is
 * built in ../openapi.ts): path, query and body schemas come from the route's `Zod` pipes, its
 * security from `@Public()`, its error responses from both. A route adds `@ApiReturns(...)` for
 * its answer, and `@ApiInput(...)` only where it parses its input by hand.
 */

export const API_RETURNS = 'rcflow:api-returns';
export const API_ERRORS = 'rcflow:api-errors';
export const API_INPUT = 'rcflow:api-input';

/** An OpenAPI 3.0 schema object (plain JSON). */
export type OpenApiSchema = Record<string, unknown>;

export interface ReturnsOptions {
  /** The status answered (default: Nest's, from @HttpCode, else 201 for POST and 200 otherwise). */
  status?: number;
  /** Default application/json. */
  contentType?: string;
  description?: string;
  /** An example answer (default: one made from the schema). Tests check it against the schema. */
  example?: unknown;
  /** Response headers, e.g. { Location: 'Where the new resource is' }. */
  headers?: Record<string, string>;
}

export interface ReturnsEntry extends ReturnsOptions {
  /** null: no body (204). */
  schema: z.ZodType | OpenApiSchema | null;
}

/**
 * Documents a route's successful answer: a zod schema of what it returns (as sent: `io: 'output'`),
 * an OpenAPI schema object, or null for no body. Repeat it for other statuses or content types.
 */
export function ApiReturns(schema: z.ZodType | OpenApiSchema | null, options: ReturnsOptions = {}): MethodDecorator {
  return (target, key, descriptor) => {
    const fn = descriptor.value as object;
    const list = (Reflect.getMetadata(API_RETURNS, fn) as ReturnsEntry[] | undefined) ?? [];
    Reflect.defineMetadata(API_RETURNS, [...list, { schema, ...options }], fn);
    return descriptor;
  };
}

/**
 * Error statuses a route may answer beyond those derived from it (400 with any validated input,
 * 401/403 unless public, 404 with a path parameter, 409 for an authenticated write, 413 with a
 * body, 429 always): e.g. 422, 503, or 401 on a public route that checks its own signature.
 */
export const ApiErrors = (...statuses: number[]) => SetMetadata(API_ERRORS, statuses);

export interface InputDocs {
  /** The query as an object schema, for a route that parses it by hand. */
  query?: z.ZodType;
  /** The path parameters as an object schema, for a route that reads them without a Zod pipe. */
  params?: z.ZodType;
  /** Request headers the route reads and validates by hand, by name. */
  headers?: Record<string, z.ZodType>;
  /** The JSON body, for a route that parses it by hand. */
  body?: z.ZodType;
  /** An example body (default: one made from the schema with its required fields). Tests parse it with the body's zod schema. */
  bodyExample?: unknown;
  /** A body that is not JSON (e.g. a webhook's raw bytes): its media type and schema. */
  rawBody?: { contentType: string; schema: OpenApiSchema; example: unknown };
}

/** Documents input a route does not validate through `Zod` pipes, or an example body. */
export const ApiInput = (input: InputDocs) => SetMetadata(API_INPUT, input);

/** OpenAPI 3.0 has no such keywords: dropped where zod's conversion leaves them. */
const UNSUPPORTED = new Set([
  '$schema',
  '$id',
  'id',
  '$comment',
  'contentEncoding',
  'contentMediaType',
  'propertyNames',
  'dependentRequired',
  'dependentSchemas',
  'unevaluatedProperties',
  'unevaluatedItems',
  'if',
  'then',
  'else',
  'contains',
  'minContains',
  'maxContains',
]);

const documentedAs = new WeakMap<z.ZodType, z.ZodType>();

/**
 * Documents `schema` as `doc` says: for a schema zod cannot describe as the caller sends it (a
 * preprocess that fills defaults shows its fields as required). Returns `schema` unchanged.
 */
export function documentAs<T extends z.ZodType>(schema: T, doc: z.ZodType): T {
  documentedAs.set(schema, doc);
  return schema;
}

/**
 * A zod schema as an OpenAPI 3.0 schema object: zod's own `openapi-3.0` target, then what it
 * leaves that 3.0 refuses (`const`, `examples`, tuples, `$defs`) rewritten. Definitions it
 * extracts are returned to be put under components.schemas.
 */
export function openApiSchema(
  schema: z.ZodType,
  io: 'input' | 'output',
  defsPrefix = 'Def',
): { schema: OpenApiSchema; defs: Record<string, OpenApiSchema> } {
  const options = {
    target: 'openapi-3.0',
    io,
    unrepresentable: 'any',
    override: (ctx: { zodSchema: unknown; jsonSchema: Record<string, unknown> }) => {
      const doc = documentedAs.get(ctx.zodSchema as z.ZodType);
      if (!doc) return;
      for (const key of Object.keys(ctx.jsonSchema)) Reflect.deleteProperty(ctx.jsonSchema, key);
      Object.assign(ctx.jsonSchema, z.toJSONSchema(doc, { target: 'openapi-3.0', io, unrepresentable: 'any' }));
    },
  } as const;
  const json = z.toJSONSchema(schema, options) as OpenApiSchema;
  const rawDefs = {
    ...((json.$defs as Record<string, OpenApiSchema> | undefined) ?? {}),
    ...((json.definitions as Record<string, OpenApiSchema> | undefined) ?? {}),
  };
  delete json.$defs;
  delete json.definitions;
  // Named by `.meta({ id })`: one component for all; zod's own names (__schema0, recursion) per route.
  const rename = (name: string) => (name.startsWith('__') ? defsPrefix : '') + name.replace(/[^A-Za-z0-9._-]/g, '_');
  const defs: Record<string, OpenApiSchema> = {};
  for (const [name, def] of Object.entries(rawDefs)) defs[rename(name)] = normalize(def, rename) as OpenApiSchema;
  const root = normalize(json, rename) as OpenApiSchema;
  for (const node of [root, ...Object.values(defs)]) typeNullables(node, defs);
  return { schema: root, defs };
}

/**
 * 3.0 reads `nullable` only beside a `type`: a nullable reference (`allOf: [{$ref}]`) gets the
 * type of what it references.
 */
function typeNullables(node: unknown, defs: Record<string, OpenApiSchema>): void {
  if (Array.isArray(node)) return node.forEach((n) => typeNullables(n, defs));
  if (node === null || typeof node !== 'object') return;
  const s = node as OpenApiSchema;
  if (s.nullable === true && s.type === undefined) {
    const members = [...((s.allOf as OpenApiSchema[] | undefined) ?? []), ...((s.anyOf as OpenApiSchema[] | undefined) ?? [])];
    const types = new Set(
      members.map((m) => (typeof m.$ref === 'string' ? defs[m.$ref.replace('#/components/schemas/', '')]?.type : m.type)),
    );
    const [only] = [...types];
    if (types.size === 1 && typeof only === 'string') s.type = only;
  }
  for (const v of Object.values(s)) typeNullables(v, defs);
}

function normalize(node: unknown, rename: (name: string) => string): unknown {
  if (Array.isArray(node)) return node.map((n) => normalize(n, rename));
  if (node === null || typeof node !== 'object') return node;
  const out: OpenApiSchema = {};
  for (const [k, v] of Object.entries(node as OpenApiSchema)) {
    if (UNSUPPORTED.has(k)) continue;
    if (k === 'properties' || k === 'patternProperties') {
      out[k] = Object.fromEntries(Object.entries(v as OpenApiSchema).map(([name, s]) => [name, normalize(s, rename)]));
    } else if (k === 'const') {
      out.enum = [v];
      if (v === null) out.nullable = true;
    } else if (k === 'examples') {
      if (Array.isArray(v) && v.length > 0) out.example = v[0];
    } else if (k === '$ref' && typeof v === 'string') {
      const m = /^#\/(?:\$defs|definitions)\/(.+)$/.exec(v);
      out.$ref = m ? `#/components/schemas/${rename(decodeURIComponent(m[1]!))}` : v;
    } else if (k === 'prefixItems' && Array.isArray(v)) {
      // A tuple: 3.0 has no positional items; any of the element schemas, with the length fixed.
      out.items = { anyOf: v.map((s) => normalize(s, rename)) };
      out.minItems ??= v.length;
      out.maxItems ??= v.length;
    } else if (k === 'type' && Array.isArray(v)) {
      const types = (v as unknown[]).filter((t) => t !== 'null');
      if (types.length < v.length) out.nullable = true;
      if (types.length === 1) out.type = types[0];
      else out.anyOf = types.map((t) => ({ type: t }));
    } else if (k === 'exclusiveMinimum' || k === 'exclusiveMaximum') {
      if (typeof v === 'number') {
        out[k === 'exclusiveMinimum' ? 'minimum' : 'maximum'] = v;
        out[k] = true;
      } else out[k] = v;
    } else {
      out[k] = normalize(v, rename);
    }
  }
  // `items: false` after a tuple (no further elements): the maxItems above says it.
  if (out.items === false) delete out.items;
  return out;
}

/** The standard text of the statuses rcflow answers. */
export const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No Content',
  400: 'Validation failed: details name each field at fault',
  401: 'Missing, malformed, unknown, revoked or expired API key (or a bad signature on a public route that checks one)',
  403: 'The caller lacks the permission, or the object is outside its scope for this action',
  404: 'No such object, or it is outside the caller’s scope',
  409: 'Conflicts with the current state (a duplicate name, an object already in that state, a key reused with another body)',
  413: 'Request body too large',
  415: 'Unsupported media type',
  422: 'Well-formed but refers to something that cannot be used',
  429: 'Rate limited: retry after the Retry-After header’s seconds',
  503: 'This rcflow process is shutting down: retry against another instance',
};

/**
 * An example value for a schema: its own example where it has one, else made from its type and
 * format. `requiredOnly` leaves out optional object properties (request bodies: a minimal valid one).
 */
export function sampleOf(schema: OpenApiSchema, components: Record<string, OpenApiSchema>, requiredOnly = false, depth = 0): unknown {
  if (depth > 12) return null;
  if (typeof schema.$ref === 'string') {
    const name = schema.$ref.replace('#/components/schemas/', '');
    return sampleOf(components[name] ?? {}, components, requiredOnly, depth + 1);
  }
  if ('example' in schema) return schema.example;
  if ('default' in schema && schema.default !== undefined) return schema.default;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum.find((v) => v !== null) ?? schema.enum[0];
  if (Array.isArray(schema.allOf)) {
    const parts = schema.allOf.map((s) => sampleOf(s as OpenApiSchema, components, requiredOnly, depth + 1));
    return parts.every((p) => p !== null && typeof p === 'object' && !Array.isArray(p)) ? Object.assign({}, ...parts) : parts[0];
  }
  for (const k of ['oneOf', 'anyOf'] as const) {
    const options = schema[k];
    if (Array.isArray(options) && options.length > 0) return sampleOf(options[0] as OpenApiSchema, components, requiredOnly, depth + 1);
  }
  const type = schema.type ?? (schema.properties ? 'object' : undefined);
  switch (type) {
    case 'object': {
      const props = (schema.properties as Record<string, OpenApiSchema> | undefined) ?? {};
      const required = new Set((schema.required as string[] | undefined) ?? []);
      const out: Record<string, unknown> = {};
      for (const [name, s] of Object.entries(props)) {
        if (!requiredOnly || required.has(name)) out[name] = sampleOf(s, components, requiredOnly, depth + 1);
      }
      return out;
    }
    case 'array': {
      const n = Math.max(1, Number(schema.minItems ?? 1));
      const item = schema.items as OpenApiSchema | undefined;
      return Array.from({ length: n }, () => (item ? sampleOf(item, components, requiredOnly, depth + 1) : 'item'));
    }
    case 'integer':
    case 'number': {
      const min = typeof schema.minimum === 'number' ? schema.minimum + (schema.exclusiveMinimum === true ? 1 : 0) : undefined;
      const max = typeof schema.maximum === 'number' ? schema.maximum : undefined;
      if (min !== undefined) return min;
      return max !== undefined ? Math.min(1, max) : 1;
    }
    case 'boolean':
      return false;
    case 'string':
      return sampleString(schema);
    case undefined:
    default:
      return schema.nullable === true ? null : {};
  }
}

const FORMAT_SAMPLES: Record<string, string> = {
  uuid: '3f2a7c9e-1b4d-4e8a-9c6f-2d5e8b1a7f30',
  'date-time': '2026-03-02T09:30:00.000Z',
  date: '2026-03-02',
  email: 'alice@example.com',
  uri: 'https://example.com/hook',
  url: 'https://example.com/hook',
  ipv4: '192.0.2.10',
  ipv6: '2001:db8::10',
};

function sampleString(schema: OpenApiSchema): string {
  const format = typeof schema.format === 'string' ? FORMAT_SAMPLES[schema.format] : undefined;
  if (format) return format;
  const min = Number(schema.minLength ?? 0);
  const max = Number(schema.maxLength ?? 64);
  const base = 'example';
  const s = base.length >= min ? base : base.padEnd(min, 'x');
  return s.slice(0, Math.max(max, 1));
}
