import { DataSource } from 'typeorm';
import { verifyAudit } from '../../libs/audit/src';
import { IllegalTransitionError } from '../../libs/domain/src';
import { JobName, QueueName } from '../../libs/jobs/src';
import { applyTransitionBatch, SessionSnapshot, TransitionRequest, TransitionResult } from '../../libs/sessions/src';
import { TEST_AUDIT_KEY } from '../support/env';
import { knownOf, requestSession, seedWorld, sessionWithHead, preparedDataSource } from '../support/fixtures';

/**
 * The transition owner's statement for one session: fenced by state, version and audit head, all
 * or nothing, effects only when it applies. Prepared statements are on, as in the apps.
 */
describe('a session transition as one statement', () => {
  let ds: DataSource;

  beforeAll(async () => {
    ds = await preparedDataSource('store');
  });
  afterAll(async () => {
    await ds.destroy();
  });

  const read = (id: string) => sessionWithHead(ds, id);
  const one = async (req: TransitionRequest): Promise<TransitionResult | null> =>
    (await applyTransitionBatch(ds.manager, TEST_AUDIT_KEY, [req]))[0]!;
  const claim = (session: SessionSnapshot): TransitionRequest => ({
    session,
    actor: { id: null, kind: 'system' },
    steps: [{ to: 'validating' }, { to: 'eligible', patch: { consentRule: 'not_required' } }],
    effects: [{ kind: 'decision', eligible: true, consentRule: 'not_required', checks: [], facts: {} }],
  });

  it('moves the session, appends one event per step, advances the head and writes its effects', async () => {
    const id = await requestSession(ds, await seedWorld(ds));
    const result = await one(claim(knownOf(await read(id))));
    const after = await read(id);
    expect(result).toEqual({
      state: 'eligible',
      version: 3,
      head: { seq: 3, hash: after.hash },
      at: expect.any(Date),
      elapsedSeconds: null,
    });
    expect(after).toMatchObject({ state: 'eligible', version: 3, seq: 3, events: 3, decisions: 1, consent_rule: 'not_required' });
    const events = await ds.query(`SELECT seq, outcome, data FROM audit_events WHERE stream = $1 ORDER BY seq`, [`session:${id}`]);
    expect(events.map((e: { outcome: string }) => e.outcome)).toEqual(['requested', 'validating', 'eligible']);
    expect(events[2].data).toMatchObject({ from: 'validating', to: 'eligible', version: 3 });
    expect((await verifyAudit(ds, TEST_AUDIT_KEY)).ok).toBe(true);
  });

  it('answers, for the metrics, the time from request to active and from active to ended, as the database has them', async () => {
    const id = await requestSession(ds, await seedWorld(ds));
    // The request was made 90 s ago; the session became active 30 s before it ended.
    await ds.query(`UPDATE sessions SET created_at = now() - interval '90 seconds' WHERE id = $1`, [id]);
    const toActive = await one({
      session: knownOf(await read(id)),
      actor: { id: null, kind: 'system' },
      steps: [
        { to: 'validating' },
        { to: 'eligible' },
        { to: 'pushing_settings' },
        { to: 'awaiting_consent' },
        { to: 'active', patch: { startedAt: new Date(Date.now() - 30_000) } },
      ],
    });
    expect(toActive!.elapsedSeconds).toBeGreaterThanOrEqual(90);
    expect(toActive!.elapsedSeconds).toBeLessThan(120);
    const ended = await one({
      session: knownOf(await read(id)),
      actor: { id: null, kind: 'system' },
      steps: [{ to: 'ended', patch: { endedAt: new Date() } }],
    });
    expect(ended!.elapsedSeconds).toBeGreaterThanOrEqual(29);
    expect(ended!.elapsedSeconds).toBeLessThan(60);
  });

  it('writes nothing when the session has moved on (a duplicate or late job)', async () => {
    const id = await requestSession(ds, await seedWorld(ds));
    const before = await read(id);
    expect(await one(claim(knownOf(before)))).not.toBeNull();
    const mid = await read(id);
    expect(await one(claim(knownOf(before)))).toBeNull();
    expect(await read(id)).toEqual(mid);
  });

  it('writes nothing when the state matches but the version is stale (the fence has two halves)', async () => {
    const id = await requestSession(ds, await seedWorld(ds));
    const before = await read(id);
    // Same state, a later version: what a fence on state alone would take for the row it read.
    await ds.query('UPDATE sessions SET version = version + 1 WHERE id = $1', [id]);
    const bumped = await read(id);
    expect(bumped).toMatchObject({ state: 'requested', version: before.version + 1 });
    expect(await one(claim(knownOf(before)))).toBeNull();
    expect(await read(id)).toEqual(bumped);
    // Back as the chain says, so the other tests' verification sees only their own doing.
    await ds.query('UPDATE sessions SET version = version - 1 WHERE id = $1', [id]);
  });

  it('rolls everything back when the audit head does not match what was read', async () => {
    const id = await requestSession(ds, await seedWorld(ds));
    const before = await read(id);
    const forged = { ...knownOf(before), head: { seq: before.seq, hash: 'f'.repeat(64) } };
    await expect(one(claim(forged))).rejects.toThrow(/audit head of a session does not match/);
    expect(await read(id)).toEqual(before);
  });

  it('refuses a move the lifecycle does not allow, before writing anything', async () => {
    const id = await requestSession(ds, await seedWorld(ds));
    const before = await read(id);
    await expect(one({ session: knownOf(before), actor: { id: null, kind: 'system' }, steps: [{ to: 'active' }] })).rejects.toThrow(
      IllegalTransitionError,
    );
    expect(await read(id)).toEqual(before);
  });

  it('starts the chain of a session that has no head yet at genesis', async () => {
    const world = await seedWorld(ds);
    const [{ id }] = await ds.query(
      `INSERT INTO sessions (device_id, viewer_id, requester_id, type, access, state, state_changed_at, version)
       VALUES ($1, $2, $2, 'remote-control', 'full', 'requested', now(), 0) RETURNING id`,
      [world.deviceId, world.viewerId],
    );
    const snapshot: SessionSnapshot = {
      id,
      state: 'requested',
      version: 0,
      deviceId: world.deviceId,
      viewerId: world.viewerId,
      ticketRef: null,
      head: null,
    };
    expect(await one(claim(snapshot))).toMatchObject({ state: 'eligible', version: 2, head: { seq: 2 } });
    expect(await read(id)).toMatchObject({ version: 2, seq: 2, events: 2 });
    expect((await verifyAudit(ds, TEST_AUDIT_KEY)).problems).toEqual([]);
  });

  it('enqueues its jobs through the outbox only when it applies', async () => {
    const id = await requestSession(ds, await seedWorld(ds));
    const before = await read(id);
    const cancel = (session: SessionSnapshot): TransitionRequest => ({
      session,
      actor: { id: null, kind: 'system' },
      steps: [{ to: 'cancelled', patch: { endedAt: new Date() } }],
      effects: [
        { kind: 'enqueue', job: { queue: QueueName.Sessions, name: JobName.EndSession, data: { sessionId: id, endedBy: 'test' } } },
      ],
    });
    expect(await one(cancel(knownOf(before)))).not.toBeNull();
    expect(await one(cancel(knownOf(before)))).toBeNull();
    const rows = await ds.query(`SELECT job_name, job_id, payload FROM outbox WHERE job_id = $1`, [`end.${id}`]);
    expect(rows).toEqual([{ job_name: 'session.end', job_id: `end.${id}`, payload: { sessionId: id, endedBy: 'test' } }]);
  });

  it('owes a ticket one write-back job per step into a state the ticket is told of, in the same statement', async () => {
    const world = await seedWorld(ds);
    const ticketed = await requestSession(ds, world);
    await ds.query(`UPDATE sessions SET ticket_ref = 'HELP-7' WHERE id = $1`, [ticketed]);
    const plain = await requestSession(ds, await seedWorld(ds));
    const reject = (session: SessionSnapshot): TransitionRequest => ({
      session,
      actor: { id: null, kind: 'system' },
      steps: [{ to: 'validating' }, { to: 'rejected', reason: 'not permitted' }],
    });
    const snapshot = knownOf(await read(ticketed));
    expect(snapshot.ticketRef).toBe('HELP-7');
    expect(await one(reject(snapshot))).not.toBeNull();
    expect(await one(reject(knownOf(await read(plain))))).not.toBeNull();
    // A late duplicate of the ticketed transition owes nothing more.
    expect(await one(reject(snapshot))).toBeNull();
    const rows = await ds.query(`SELECT queue, job_name, job_id, payload FROM outbox WHERE payload->>'sessionId' = ANY($1) ORDER BY id`, [
      [ticketed, plain],
    ]);
    expect(rows).toEqual([
      {
        queue: QueueName.TicketWritebacks,
        job_name: JobName.TicketWriteback,
        job_id: `writeback.${ticketed}.rejected`,
        payload: { sessionId: ticketed, outcome: 'rejected', redrive: 0 },
      },
    ]);
  });

  it('prepares each statement once per connection and reuses it', async () => {
    for (let i = 0; i < 3; i++) {
      const id = await requestSession(ds, await seedWorld(ds));
      await ds.transaction(async (tx) => {
        // One connection throughout, so pg_prepared_statements (per backend) sees what it prepared.
        expect((await applyTransitionBatch(tx, TEST_AUDIT_KEY, [claim(knownOf(await read(id)))]))[0]).not.toBeNull();
        const [{ n }] = await tx.query(
          `SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name LIKE 'rc_%' AND statement LIKE '%INSERT INTO eligibility_decisions%'`,
        );
        expect(n).toBe(1);
      });
    }
  });
});
