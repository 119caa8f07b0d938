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

/** The instants every list, export and report accepts: what PostgreSQL and JavaScript both hold, read the same way by each. */
export const EARLIEST_INSTANT = Date.UTC(1970, 0, 1);
export const LATEST_INSTANT = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * An ISO 8601 date-time with an offset, from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z once
 * in UTC: the one date schema of every query parameter and body field that is an instant.
 */
export const dateTime = z.iso.datetime({ offset: true }).refine((s) => {
  const t = Date.parse(s);
  return Number.isFinite(t) && t >= EARLIEST_INSTANT && t <= LATEST_INSTANT;
}, 'must be a real date-time from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z');

/** A keyset cursor: the values of the last row shown, typed and range-checked when read back. */
export interface CursorCodec<T> {
  encode(value: T): string;
  /** The values, or a 400 for anything that is not a cursor this codec made. */
  decode(cursor: string): T;
}

export function cursorCodec<S extends z.ZodType>(schema: S): CursorCodec<z.infer<S>> {
  return {
    encode: (value) => Buffer.from(JSON.stringify(value)).toString('base64url'),
    decode(c) {
      try {
        const r = schema.safeParse(JSON.parse(Buffer.from(c, 'base64url').toString('utf8')));
        if (r.success) return r.data;
      } catch {
        /* falls through to the 400 below */
      }
      throw new ValidationFailed('invalid cursor: use the nextCursor of a previous page');
    },
  };
}

const MAX_BIGINT = 2n ** 63n - 1n;
/** A PostgreSQL bigint (non-negative), as the decimal string node-postgres returns. */
const bigintId = z
  .string()
  .regex(/^(0|[1-9]\d{0,18})$/)
  .refine((s) => BigInt(s) <= MAX_BIGINT);

/** A list keyed by a bigint id, newest first (the audit list, a ticket integration's delivery log): the id of the last row shown. */
export const bigintIdCursor = cursorCodec(z.tuple([bigintId]));
export const auditCursor = bigintIdCursor;
/** The session list (newest first): created_at and id of the last session shown. */
export const sessionCursor = cursorCodec(z.tuple([dateTime, uuid]));
/** The administration lists: created_at in microseconds since 1970 (a JavaScript Date keeps only milliseconds) and id. */
export const adminCursor = cursorCodec(z.tuple([z.string().regex(/^\d{1,18}$/), uuid]));
