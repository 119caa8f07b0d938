import { ApiBody, ApiQuery, type SchemaObject } from '@nestjs/swagger';
import { z } from 'zod';

/** Describes a zod body schema in /docs (as the caller sends it). */
export const BodyOf = (schema: z.ZodType) =>
  ApiBody({ schema: z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as SchemaObject });

/** Documents the optional query parameters of a list. */
export function QueryParams(...names: string[]): MethodDecorator {
  const decorators = names.map((name) => ApiQuery({ name, required: false }));
  return (target, key, descriptor) => {
    for (const d of decorators) d(target, key, descriptor);
  };
}
