import { DataSource } from 'typeorm';
import { isUniqueViolation } from '../../libs/database/src';
import { applyTransitionBatch, TransitionBatcher, TransitionRequest } from '../../libs/sessions/src';
import { verifyAudit } from '../../libs/audit/src';
import { TEST_AUDIT_KEY } from '../support/env';
import { knownOf, requestSession, seedWorld, sessionWithHead, preparedDataSource } from '../support/fixtures';

/**
 * Transitions of many sessions in one statement: per session exactly what a statement of its own does,
 * and an error of the statement never becomes a wrong outcome for another session.
 */
describe('batched transitions on PostgreSQL', () => {
  let ds: DataSource;

  beforeAll(async () => {
    ds = await preparedDataSource('batch');
  });
  afterAll(async () => {
    await ds.destroy();
  });

  const read = (id: string) => sessionWithHead(ds, id);
  const eventsOf = (id: string) =>
    ds.query(`SELECT seq, actor_kind, action, outcome, reason, data FROM audit_events WHERE stream = $1 ORDER BY seq`, [`session:${id}`]);
  /** The worker's decision: claim, eligible with a patch, pushing_settings, and the decision row. */
  const decide = (_id: string, row: Awaited<ReturnType<typeof read>>): TransitionRequest => ({
    session: knownOf(row),
    actor: { id: null, kind: 'system' },
    steps: [
      { to: 'validating' },
      { to: 'eligible', data: { consentRule: 'not_required' }, patch: { consentRule: 'not_required', settingsHash: 'h1' } },
      { to: 'pushing_settings' },
    ],
    effects: [{ kind: 'decision', eligible: true, consentRule: 'not_required', checks: [], facts: {} }],
  });
  const fail = (_id: string, row: Awaited<ReturnType<typeof read>>): TransitionRequest => ({
    session: knownOf(row),
    actor: { id: null, kind: 'system' },
    steps: [{ to: 'failed', reason: 'cause', data: { cause: 'x' }, patch: { failureCause: 'x', endedAt: new Date() } }],
  });
  const alone = (req: TransitionRequest) => applyTransitionBatch(ds.manager, TEST_AUDIT_KEY, [req]);
  const fresh = async (n: number) => Promise.all(Array.from({ length: n }, async () => requestSession(ds, await seedWorld(ds))));
  const settle = <T>(p: Promise<T>) =>
    p.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );

  it('gives many concurrent sessions the same chain and rows as one statement each', async () => {
    const batched = await fresh(24);
    const single = await fresh(4);
    // 24 requests, 8 a statement and no timer: every one of them goes through a batch.
    const batcher = new TransitionBatcher(ds.manager, TEST_AUDIT_KEY, { max: 8, waitMs: 60_000 });
    const results = await Promise.all(batched.map(async (id) => batcher.apply(decide(id, await read(id)))));
    for (const id of single) await alone(decide(id, await read(id)));
    // And a second transition of each, a patch among them.
    await Promise.all(batched.map(async (id) => batcher.apply(fail(id, await read(id)))));
    for (const id of single) await alone(fail(id, await read(id)));

    expect(results.every((r) => r?.state === 'pushing_settings' && r.version === 4 && r.head.seq === 4)).toBe(true);
    const expected = await eventsOf(single[0]);
    for (const id of [...batched, ...single]) {
      const row = await read(id);
      expect(row).toMatchObject({
        state: 'failed',
        version: 5,
        seq: 5,
        events: 5,
        decisions: 1,
        consent_rule: 'not_required',
        settings_hash: 'h1',
      });
      expect(row.ended_at).not.toBeNull();
      expect(await eventsOf(id)).toEqual(expected);
    }
    expect(await verifyAudit(ds, TEST_AUDIT_KEY)).toMatchObject({ ok: true });
  });

  it('answers null to a request whose session moved on while the others of its statement apply', async () => {
    const [a, b, c] = await fresh(3);
    const stale = await read(b);
    await alone(decide(b, stale));
    const movedOn = await read(b);
    const results = await applyTransitionBatch(ds.manager, TEST_AUDIT_KEY, [
      decide(a, await read(a)),
      decide(b, stale),
      decide(c, await read(c)),
    ]);
    expect(results.map((r) => r?.version ?? null)).toEqual([4, null, 4]);
    expect(await read(b)).toEqual(movedOn);
    expect(await read(a)).toMatchObject({ state: 'pushing_settings', version: 4, events: 4, decisions: 1 });
    expect(await verifyAudit(ds, TEST_AUDIT_KEY)).toMatchObject({ ok: true });
  });

  it('fails only the session that takes a controlled device; the others of its batch apply', async () => {
    const world = await seedWorld(ds);
    const [x, y] = [await requestSession(ds, world), await requestSession(ds, world)];
    const [other] = await fresh(1);
    const reqs = [decide(x, await read(x)), decide(y, await read(y)), decide(other, await read(other))];
    // The statement alone aborts whole: nothing applied.
    const whole = await settle(applyTransitionBatch(ds.manager, TEST_AUDIT_KEY, reqs));
    expect(isUniqueViolation((whole as { error: unknown }).error, 'uq_sessions_one_controller')).toBe(true);
    expect((await read(other)).version).toBe(1);

    const batcher = new TransitionBatcher(ds.manager, TEST_AUDIT_KEY, { max: 3, waitMs: 60_000 });
    const outcomes = await Promise.all(reqs.map((req) => settle(batcher.apply(req))));
    const [ox, oy, oo] = outcomes as { value?: unknown; error?: unknown }[];
    expect(oo.value).toMatchObject({ state: 'pushing_settings', version: 4 });
    // Which of the two gets the device is a race; exactly one does, the other gets the violation.
    const lost = [ox, oy].filter((o) => 'error' in o);
    expect(lost).toHaveLength(1);
    expect(isUniqueViolation(lost[0].error, 'uq_sessions_one_controller')).toBe(true);
    expect([ox, oy].filter((o) => 'value' in o && o.value !== null)).toHaveLength(1);
    const states = [(await read(x)).state, (await read(y)).state].sort();
    expect(states).toEqual(['pushing_settings', 'requested']);
    expect(await verifyAudit(ds, TEST_AUDIT_KEY)).toMatchObject({ ok: true });
  });

  it('fails only the session whose audit head does not match; the others of its batch apply', async () => {
    const [a, forged, c] = await fresh(3);
    const before = await read(forged);
    const bad = decide(forged, before);
    bad.session = { ...bad.session, head: { seq: before.seq, hash: 'f'.repeat(64) } };
    const reqs = [decide(a, await read(a)), bad, decide(c, await read(c))];
    await expect(applyTransitionBatch(ds.manager, TEST_AUDIT_KEY, reqs)).rejects.toThrow(/does not match/);
    expect((await read(a)).version).toBe(1);

    const batcher = new TransitionBatcher(ds.manager, TEST_AUDIT_KEY, { max: 3, waitMs: 60_000 });
    const [oa, of, oc] = await Promise.all(reqs.map((req) => settle(batcher.apply(req))));
    expect(oa).toEqual({ value: expect.objectContaining({ state: 'pushing_settings', version: 4 }) });
    expect(oc).toEqual({ value: expect.objectContaining({ state: 'pushing_settings', version: 4 }) });
    expect(String((of as { error?: Error }).error?.message)).toMatch(/audit head of a session does not match/);
    expect(await read(forged)).toEqual(before);
    expect(await verifyAudit(ds, TEST_AUDIT_KEY)).toMatchObject({ ok: true });
  });
});
