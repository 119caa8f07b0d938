import type { DataSource } from 'typeorm';
import { Session, createDataSource } from '../../libs/database/src';
import { CONTROLLING_STATES } from '../../libs/domain/src';
import { freshDatabase } from '../support/env';

/** The quoted states of an index predicate such as `(state = ANY (ARRAY['eligible'::text, …]))`. */
const quotedStates = (predicate: string) => [...predicate.matchAll(/'([^']*)'/g)].map((m) => m[1]).sort();

/**
 * Entities and migrations describe one schema: what `migration:generate` would write against a
 * database migrated to the head is empty. A change to an entity without its migration (or the
 * reverse) fails here, with the statements the generator would write.
 */
describe('entities and migrations agree', () => {
  let ds: DataSource;

  beforeAll(async () => {
    ds = createDataSource({ url: await freshDatabase('schema_drift'), pgliteDir: '', poolSize: 2 });
    await ds.initialize();
  });
  afterAll(async () => {
    if (ds?.isInitialized) await ds.destroy();
  });

  it('has no pending migration and nothing for migration:generate to write', async () => {
    expect(await ds.showMigrations()).toBe(false);
    const { upQueries } = await ds.driver.createSchemaBuilder().log();
    const statements = upQueries.map((q) => q.query);
    // toEqual prints every statement the generator would write when this fails.
    expect(statements).toEqual([]);
  });

  it('keeps one controlling session per device: uq_sessions_one_controller covers exactly CONTROLLING_STATES', async () => {
    const rows: { predicate: string; unique: boolean; columns: string[] }[] = await ds.query(
      `SELECT pg_get_expr(i.indpred, i.indrelid) AS predicate, i.indisunique AS unique,
              ARRAY(SELECT a.attname::text FROM unnest(i.indkey) AS k(n) JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n) AS columns
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relname = 'uq_sessions_one_controller' AND i.indrelid = 'sessions'::regclass`,
    );
    expect(rows).toHaveLength(1);
    const [index] = rows;
    expect(index.unique).toBe(true);
    expect(index.columns).toEqual(['device_id']);
    expect(index.predicate).toMatch(/^\(?\s*state\b/);
    expect(quotedStates(index.predicate)).toEqual([...CONTROLLING_STATES].sort());

    // The entity says the same, so a regenerated migration would too.
    const declared = ds.getMetadata(Session).indices.find((i) => i.name === 'uq_sessions_one_controller');
    expect(declared?.isUnique).toBe(true);
    expect(quotedStates(declared?.where ?? '')).toEqual([...CONTROLLING_STATES].sort());
  });
});
