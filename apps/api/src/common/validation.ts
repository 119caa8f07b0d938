import { PipeTransform } from '@nestjs/common';
import { z } from 'zod';
import { ValidationFailed } from '@rcflow/domain';

/** Parses a value with a zod schema, turning every issue into one 400 with the paths at fault. */
export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, what = 'body'): z.infer<T> {
  const result = schema.safeParse(value ?? {});
  if (!result.success) {
    const issues = result.error.issues.map((i) => ({ path: i.path.join('.') || what, message: i.message }));
    throw new ValidationFailed(`invalid ${what}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
  return result.data;
}

/** A pipe for `@Body(new Zod(schema))`, `@Query(...)` and `@Param(...)`. */
export class Zod<T extends z.ZodType> implements PipeTransform {
  constructor(
    readonly schema: T,
    private readonly what = 'body',
  ) {}
  transform(value: unknown): z.infer<T> {
    return parseOrThrow(this.schema, value, this.what);
  }
}

export const uuid = z.uuid({ message: 'must be a UUID' });
export const idParam = z.strictObject({ id: uuid });
/** An opaque keyset cursor. */
export const cursor = z.string().regex(/^[A-Za-z0-9_-]{1,200}$/, 'malformed cursor');
export const limit = z.coerce.number().int().min(1).max(500).default(50);

export function encodeCursor(parts: (string | number)[]): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}
export function decodeCursor(c: string, arity: number): (string | number)[] {
  try {
    const parts: unknown = JSON.parse(Buffer.from(c, 'base64url').toString('utf8'));
    if (Array.isArray(parts) && parts.length === arity) return parts as (string | number)[];
  } catch {
    /* falls through to the 400 below */
  }
  throw new ValidationFailed('invalid cursor: use the nextCursor of a previous page');
}
