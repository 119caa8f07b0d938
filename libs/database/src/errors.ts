/** PostgreSQL error codes rcflow reacts to. */
export const PG_UNIQUE_VIOLATION = '23505';

export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const e = err as
    { code?: string; driverError?: { code?: string; constraint?: string }; constraint?: string; message?: string } | null | undefined;
  const code = e?.driverError?.code ?? e?.code;
  if (code !== PG_UNIQUE_VIOLATION) return false;
  if (!constraint) return true;
  const name = e?.driverError?.constraint ?? e?.constraint;
  // PGlite does not always report the constraint name; fall back to the message.
  return name === constraint || (e?.message ?? '').includes(constraint);
}
