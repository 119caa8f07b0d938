import { DataSource } from 'typeorm';
import { applyTransitions, createDataSource, enablePreparedStatements, KnownSession, TransitionRequest } from '../../libs/database/src';
import { loadConfig } from '../../libs/config/src';
import { verifyAudit } from '../../libs/audit/src';
import { TEST_AUDIT_KEY, freshDatabase } from '../support/env';
import { knownOf, requestSession, seedWorld, sessionWithHead } from '../support/fixtures';

/**
 * applyTransitions' one-statement path: fenced by version and by the audit head, all or nothing.
 * Prepared statements are on, as in the apps.
 */
describe('applyTransitions as one statement', () => {
  let ds: DataSource;

  beforeAll(async () => {
    const config = loadConfig({ DATABASE_URL: await freshDatabase('store'), AUDIT_HMAC_KEY: TEST_AUDIT_KEY });
    ds = createDataSource(config.database);
    await ds.initialize();
    enablePreparedStatements(ds);
  });
  afterAll(async () => {
    await ds.destroy();
  });

  const read = (id: string) => sessionWithHead(ds, id);
  const claim = (id: string, known: KnownSession, version = 1): TransitionRequest => ({
    sessionId: id,
    from: 'requested',
    expectedVersion: version,
    actor: { id: null, kind: 'system' },
    steps: [{ to: 'validating' }, { to: 'eligible', patch: { consentRule: 'none' } }],
    known,
    also: [{ sql: `INSERT INTO eligibility_decisions (session_id, eligible, consent_rule, checks, facts) SELECT s.id, true, $1, '[]', '{}' FROM s`, params: ['none'] }],
  });

  it('moves the session, appends one event per step, advances the head and runs the extra writes', async () => {
    const id = await requestSession(ds, await seedWorld(ds));
    const before = await read(id);
    const result = await applyTransitions(ds.manager, TEST_AUDIT_KEY, claim(id, knownOf(before)));
    const after = await read(id);
    expect(result).toEqual({ state: 'eligible', version: 3, head: { seq: 3, hash: after.hash } });
    expect(after).toMatchObject({ state: 'eligible', version: 3, seq: 3, events: 3, decisions: 1 });
    const [{ consent_rule }] = await ds.query('SELECT consent_rule FROM sessions WHERE id = $1', [id]);
    expect(consent_rule).toBe('none');
    expect((await verifyAudit(ds, TEST_AUDIT_KEY)).ok).toBe(true);
  });

  it('writes nothing when the session has moved on (a duplicate or late job)', async () => {
    const id = await requestSession(ds, await seedWorld(ds));
    const before = await read(id);
    expect(await applyTransitions(ds.manager, TEST_AUDIT_KEY, claim(id, knownOf(before)))).not.toBeNull();
    const mid = await read(id);
    expect(await applyTransitions(ds.manager, TEST_AUDIT_KEY, claim(id, knownOf(before)))).toBeNull();
    expect(await read(id)).toEqual(mid);
  });

  it('rolls everything back when the audit head does not match what was read', async () => {
    const id = await requestSession(ds, await seedWorld(ds));
    const before = await read(id);
    const forged = { ...knownOf(before), head: { seq: before.seq, hash: 'f'.repeat(64) } };
    await expect(applyTransitions(ds.manager, TEST_AUDIT_KEY, claim(id, forged))).rejects.toThrow(/audit head of session:.* does not match/);
    expect(await read(id)).toEqual(before);
  });

  it('gives the same chain as the general path inside a transaction', async () => {
    const world = await seedWorld(ds);
    const [a, b] = [await requestSession(ds, world), await requestSession(ds, await seedWorld(ds))];
    const { known: _, ...general } = claim(a, knownOf(await read(a)));
    await ds.transaction((tx) => applyTransitions(tx, TEST_AUDIT_KEY, general));
    await applyTransitions(ds.manager, TEST_AUDIT_KEY, claim(b, knownOf(await read(b))));
    const [ra, rb] = [await read(a), await read(b)];
    expect(ra).toMatchObject({ state: 'eligible', version: 3, seq: 3, events: 3, decisions: 1 });
    expect(rb).toMatchObject({ state: 'eligible', version: 3, seq: 3, events: 3, decisions: 1 });
    expect((await verifyAudit(ds, TEST_AUDIT_KEY)).ok).toBe(true);
  });

  it('prepares each statement once per connection and reuses it', async () => {
    for (let i = 0; i < 3; i++) {
      const id = await requestSession(ds, await seedWorld(ds));
      await ds.transaction(async (tx) => {
        // One connection throughout, so pg_prepared_statements (per backend) sees what it prepared.
        expect(await applyTransitions(tx, TEST_AUDIT_KEY, claim(id, knownOf(await read(id))))).not.toBeNull();
        const [{ n }] = await tx.query(`SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name LIKE 'rc_%' AND statement LIKE '%INSERT INTO eligibility_decisions%'`);
        expect(n).toBe(1);
      });
    }
  });
});
