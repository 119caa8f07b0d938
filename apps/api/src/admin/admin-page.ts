import type { SelectQueryBuilder } from 'typeorm';
import { adminCursor } from '../common/validation';

/*
 * Keyset pagination of the administration lists over (created_at, id). The cursor carries
 * created_at in whole microseconds (a JavaScript Date keeps only milliseconds), so rows written in
 * one transaction (same now()) and sub-millisecond timestamps page exactly.
 */

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface PageRequest {
  limit: number;
  cursor?: string;
}

const createdAtMicros = (alias: string) => `(extract(epoch FROM ${alias}.created_at) * 1000000)::bigint`;

/**
 * One page of `qb` (an entity query with alias `alias` and its filters applied) in (created_at, id)
 * order, each entity turned into its view by `views` (which may load what the views need at once).
 */
export async function keysetPage<E extends { id: string }, V>(
  qb: SelectQueryBuilder<E>,
  alias: string,
  page: PageRequest,
  views: (entities: E[]) => Promise<V[]> | V[],
): Promise<Page<V>> {
  if (page.cursor) {
    const [us, id] = adminCursor.decode(page.cursor);
    qb.andWhere(`(${createdAtMicros(alias)}, ${alias}.id) > (CAST(:afterUs AS bigint), CAST(:afterId AS uuid))`, {
      afterUs: us,
      afterId: id,
    });
  }
  const { raw, entities } = await qb
    .addSelect(`${createdAtMicros(alias)}::text`, 'cursor_us')
    .orderBy(`${alias}.createdAt`, 'ASC')
    .addOrderBy(`${alias}.id`, 'ASC')
    .limit(page.limit + 1)
    .getRawAndEntities<Record<string, unknown>>();
  const items = entities.slice(0, page.limit);
  const last = items[items.length - 1];
  const lastRaw = entities.length > page.limit && last ? raw.find((r) => r[`${alias}_id`] === last.id) : undefined;
  return {
    items: await views(items),
    nextCursor: last && lastRaw ? adminCursor.encode([String(lastRaw.cursor_us), last.id]) : null,
  };
}

/** A LIKE pattern matching values that start with `prefix`, case-insensitively (with ILIKE). */
export function prefixPattern(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}
