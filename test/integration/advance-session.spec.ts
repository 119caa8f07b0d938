import { DataSource } from 'typeorm';
import { loadConfig, RcflowConfig } from '../../libs/config/src';
import { createDataSource, loadEffectiveSettings } from '../../libs/database/src';
import { SessionTransitions, applyTransitionBatch } from '../../libs/sessions/src';
import { LoopbackAgentLink, AgentTimeoutError } from '../../libs/agent-link/src';
import { verifyAudit } from '../../libs/audit/src';
import { AdvanceSessionHandler } from '../../libs/workflow/src/handlers/advance-session.handler';
import { EndSessionHandler } from '../../libs/workflow/src/handlers/end-session.handler';
import { TEST_AUDIT_KEY, freshDatabase } from '../support/env';
import { knownOf, requestSession, seedWorld, sessionWithHead } from '../support/fixtures';

/** The worker's workflow against a real PostgreSQL, with the loopback agent playing each device. */
describe('AdvanceSessionHandler on PostgreSQL', () => {
  let ds: DataSource;
  let config: RcflowConfig;
  let agent: LoopbackAgentLink;
  let handler: AdvanceSessionHandler;
  const final = { final: true };
  const notFinal = { final: false };

  beforeAll(async () => {
    const url = await freshDatabase('advance');
    config = loadConfig({
      DATABASE_URL: url,
      AUDIT_HMAC_KEY: TEST_AUDIT_KEY,
      SETTINGS_ACK_TIMEOUT_MS: '200',
      CONSENT_TIMEOUT_MS: '200',
      LOOPBACK_AGENT: JSON.stringify({
        byHostname: {
          'pc-deny': { consent: 'deny' },
          'pc-silent-user': { consent: 'silent' },
          'pc-reject-settings': { settings: 'reject' },
          'pc-offline-agent': { settings: 'silent' },
        },
      }),
    });
    ds = createDataSource(config.database);
    await ds.initialize();
  });
  beforeEach(() => {
    agent = new LoopbackAgentLink(config.agent.loopback);
    handler = new AdvanceSessionHandler(ds, new SessionTransitions(ds, config), agent, config);
  });
  afterAll(async () => {
    await ds.destroy();
  });

  const session = async (id: string) => (await ds.query('SELECT * FROM sessions WHERE id = $1', [id]))[0];
  const events = async (id: string) =>
    ds.query(`SELECT seq, action, outcome, data FROM audit_events WHERE stream = $1 ORDER BY seq`, [`session:${id}`]);

  it('carries an eligible session to active, one audit event per transition', async () => {
    const world = await seedWorld(ds);
    const id = await requestSession(ds, world);
    await handler.handle(id, final);
    const s = await session(id);
    expect(s.state).toBe('active');
    expect(s.started_at).not.toBeNull();
    expect(s.consent_rule).toBe('prompt_user');
    const ev = await events(id);
    expect(ev.map((e: { outcome: string }) => e.outcome)).toEqual([
      'requested',
      'validating',
      'eligible',
      'pushing_settings',
      'awaiting_consent',
      'active',
    ]);
    expect(s.version).toBe(ev.length);
    const [d] = await ds.query('SELECT eligible, checks FROM eligibility_decisions WHERE session_id = $1', [id]);
    expect(d.eligible).toBe(true);
    expect(d.checks).toHaveLength(10);
    const [device] = await ds.query('SELECT applied_settings_hash FROM devices WHERE id = $1', [world.deviceId]);
    expect(device.applied_settings_hash).toBe((await loadEffectiveSettings(ds.manager, world.deviceId)).versionHash);
  });

  it('runs twice and acts once: a duplicate job writes nothing and sends nothing again', async () => {
    const world = await seedWorld(ds);
    const id = await requestSession(ds, world);
    await handler.handle(id, final);
    const before = await events(id);
    // Counted where commands leave the worker, not by an agent that ignores repeats.
    const sent = [jest.spyOn(agent, 'applySettings'), jest.spyOn(agent, 'startSession'), jest.spyOn(agent, 'endSession')];
    await handler.handle(id, final);
    await Promise.all([handler.handle(id, final), handler.handle(id, final)]);
    expect(await events(id)).toEqual(before);
    expect(sent.map((spy) => spy.mock.calls.length)).toEqual([0, 0, 0]);
  });

  it('two jobs racing on one new session apply each transition once', async () => {
    const world = await seedWorld(ds);
    const id = await requestSession(ds, world);
    await Promise.all([handler.handle(id, final), handler.handle(id, final), handler.handle(id, final)]);
    const ev = await events(id);
    expect(ev.map((e: { seq: number }) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect((await session(id)).state).toBe('active');
  });

  it('rejects with every failing reason recorded', async () => {
    const world = await seedWorld(ds);
    const [stranger] = await ds.query(`INSERT INTO principals (name, kind) VALUES ('mallory-' || gen_random_uuid(), 'user') RETURNING id`);
    await ds.query(`INSERT INTO role_assignments (principal_id, role, collection_ids) VALUES ($1, 'remote_tools_operator', $2)`, [
      stranger.id,
      [world.collectionId],
    ]);
    const id = await requestSession(ds, { viewerId: stranger.id, deviceId: world.deviceId });
    await handler.handle(id, final);
    const s = await session(id);
    expect(s.state).toBe('rejected');
    const [d] = await ds.query('SELECT eligible, checks FROM eligibility_decisions WHERE session_id = $1', [id]);
    expect(d.eligible).toBe(false);
    const failed = d.checks.filter((c: { passed: boolean }) => !c.passed).map((c: { id: string }) => c.id);
    expect(failed).toEqual(['permitted_viewer']);
    const ev = await events(id);
    expect(ev[ev.length - 1].data.failedChecks).toEqual(['permitted_viewer']);
  });

  it('refuses an unattended device when unattended control is off', async () => {
    const world = await seedWorld(ds, { loggedOnUser: null });
    await ds.query(
      `UPDATE client_settings SET remote_tools = remote_tools || '{"allowRemCtrlToUnattended": false}'
                    WHERE id IN (SELECT settings_id FROM settings_deployments WHERE collection_id = $1)`,
      [world.collectionId],
    );
    const id = await requestSession(ds, world, { reason: 'INC-1' });
    await handler.handle(id, final);
    const [d] = await ds.query('SELECT checks FROM eligibility_decisions WHERE session_id = $1', [id]);
    expect(d.checks.find((c: { id: string }) => c.id === 'user_presence').passed).toBe(false);
    expect((await session(id)).state).toBe('rejected');
  });

  it('skips the push when the agent already has the settings', async () => {
    const world = await seedWorld(ds);
    const hash = (await loadEffectiveSettings(ds.manager, world.deviceId)).versionHash;
    await ds.query('UPDATE devices SET applied_settings_hash = $1 WHERE id = $2', [hash, world.deviceId]);
    const id = await requestSession(ds, world);
    await handler.handle(id, final);
    const ev = await events(id);
    expect(ev.find((e: { outcome: string }) => e.outcome === 'awaiting_consent').data.settings).toBe('already_current');
    expect([...agent.applied.keys()].some((k) => k.includes(':settings:'))).toBe(false);
    expect((await session(id)).state).toBe('active');
  });

  it('fails with the agent reason when settings are rejected', async () => {
    const world = await seedWorld(ds, { hostname: 'pc-reject-settings' });
    const id = await requestSession(ds, world);
    await handler.handle(id, final);
    const s = await session(id);
    expect(s.state).toBe('failed');
    expect(s.failure_cause).toBe('settings_rejected');
  });

  it('retries a silent agent, then fails with agent_timeout on the last attempt', async () => {
    const world = await seedWorld(ds, { hostname: 'pc-offline-agent' });
    const id = await requestSession(ds, world);
    await expect(handler.handle(id, notFinal)).rejects.toBeInstanceOf(AgentTimeoutError);
    expect((await session(id)).state).toBe('pushing_settings');
    await handler.handle(id, final);
    const s = await session(id);
    expect(s.state).toBe('failed');
    expect(s.failure_cause).toBe('agent_timeout');
  });

  it('fails a step that throws with worker_error in its own words, never the error it caught (a database message)', async () => {
    const world = await seedWorld(ds);
    const id = await requestSession(ds, world);
    const pgMessage = 'unsupported Unicode escape sequence: \\ud800 cannot be converted to text.';
    jest.spyOn(agent, 'applySettings').mockRejectedValue(Object.assign(new Error(pgMessage), { code: '22P05' }));
    await expect(handler.handle(id, notFinal)).rejects.toThrow(pgMessage);
    await handler.handle(id, final);
    const s = await session(id);
    expect(s).toMatchObject({ state: 'failed', failure_cause: 'worker_error' });
    const last = (await events(id)).at(-1);
    expect(last).toMatchObject({ outcome: 'failed', data: { cause: 'worker_error', detail: expect.stringMatching(/^rcflow /) } });
    expect(JSON.stringify(await events(id))).not.toMatch(/Unicode|22P05|ud800/);
  });

  it('records a denial and a consent timeout with who answered', async () => {
    const denied = await requestSession(ds, await seedWorld(ds, { hostname: 'pc-deny' }));
    await handler.handle(denied, final);
    expect((await session(denied)).state).toBe('denied');
    const ev = await events(denied);
    expect(ev[ev.length - 1].data.answeredBy).toBe('loopback-user@pc-deny');

    const silent = await requestSession(ds, await seedWorld(ds, { hostname: 'pc-silent-user' }));
    await handler.handle(silent, final);
    expect((await session(silent)).state).toBe('consent_timeout');
  });

  it('lets exactly one of two concurrent sessions for a device take it', async () => {
    const world = await seedWorld(ds);
    const a = await requestSession(ds, world);
    const b = await requestSession(ds, world);
    await Promise.all([handler.handle(a, final), handler.handle(b, final)]);
    const states = [(await session(a)).state, (await session(b)).state].sort();
    expect(states).toEqual(['active', 'rejected']);
    const loser = (await session(a)).state === 'rejected' ? a : b;
    const [d] = await ds.query('SELECT checks FROM eligibility_decisions WHERE session_id = $1', [loser]);
    expect(d.checks.find((c: { id: string }) => c.id === 'single_controller').passed).toBe(false);
  });

  it('a late job for a cancelled session changes nothing', async () => {
    const world = await seedWorld(ds);
    const id = await requestSession(ds, world);
    await applyTransitionBatch(ds.manager, TEST_AUDIT_KEY, [
      { session: knownOf(await sessionWithHead(ds, id)), actor: { id: null, kind: 'system' }, steps: [{ to: 'cancelled' }] },
    ]);
    await handler.handle(id, final);
    expect((await session(id)).state).toBe('cancelled');
    expect(await events(id)).toHaveLength(2);
  });

  it('tells the agent once that a session ended, however often the job runs', async () => {
    const world = await seedWorld(ds);
    const id = await requestSession(ds, world);
    await handler.handle(id, final);
    const end = new EndSessionHandler(ds, agent, config);
    const sent = jest.spyOn(agent, 'endSession');
    await end.handle(id, 'alice');
    await end.handle(id, 'alice');
    // The job may run twice and send twice; the command id makes the agent apply it once.
    expect(sent.mock.calls.map(([cmd]) => cmd.commandId)).toEqual([`${id}:end`, `${id}:end`]);
    expect(agent.applied.get(`${id}:end`)).toBe(1);
  });

  it('carries many concurrent sessions, their transitions sharing statements, with one event per version', async () => {
    expect(config.jobs.transitionBatchMax).toBeGreaterThan(1);
    const ids = await Promise.all(Array.from({ length: 16 }, async () => requestSession(ds, await seedWorld(ds))));
    // A duplicate job for some of them runs at the same time: each transition still applies once.
    await Promise.all([...ids, ...ids.slice(0, 4)].map((id) => handler.handle(id, final)));
    const rows = await ds.query(
      `SELECT s.state, s.version, (SELECT count(*)::int FROM audit_events e WHERE e.stream = 'session:' || s.id) AS events,
              (SELECT count(*)::int FROM eligibility_decisions d WHERE d.session_id = s.id) AS decisions
         FROM sessions s WHERE s.id = ANY($1)`,
      [ids],
    );
    expect(rows).toEqual(ids.map(() => ({ state: 'active', version: 6, events: 6, decisions: 1 })));
    expect((await verifyAudit(ds, TEST_AUDIT_KEY)).problems).toEqual([]);
  });

  describe('a session booked ahead', () => {
    const book = async (notBefore: Date, notAfter: Date | null) => {
      const id = await requestSession(ds, await seedWorld(ds));
      await ds.query(`UPDATE sessions SET state = 'scheduled', not_before = $2, not_after = $3 WHERE id = $1`, [id, notBefore, notAfter]);
      return id;
    };

    it('waits when its job comes early, and changes nothing', async () => {
      const start = new Date(Date.now() + 60_000);
      const id = await book(start, null);
      expect(await handler.handle(id, final)).toEqual({ runAt: start });
      expect(await session(id)).toMatchObject({ state: 'scheduled', version: 1 });
    });

    it('starts its lifecycle when due, with the checks as they are then, to active', async () => {
      const id = await book(new Date(Date.now() - 500), new Date(Date.now() + 60_000));
      expect(await handler.handle(id, final)).toBeUndefined();
      expect((await session(id)).state).toBe('active');
      const ev = await events(id);
      expect(ev.map((e: { outcome: string }) => e.outcome).slice(0, 3)).toEqual(['requested', 'validating', 'eligible']);
    });

    it('expires, with the reason, when its job runs after its latest start', async () => {
      const notAfter = new Date(Date.now() - 1000);
      const id = await book(new Date(Date.now() - 60_000), notAfter);
      await handler.handle(id, final);
      expect(await session(id)).toMatchObject({ state: 'expired' });
      const last = (await events(id)).at(-1);
      expect(last).toMatchObject({ outcome: 'expired' });
      expect((await ds.query(`SELECT reason FROM audit_events WHERE stream = $1 AND outcome = 'expired'`, [`session:${id}`]))[0]).toEqual({
        reason: `not started by its latest start ${notAfter.toISOString()}`,
      });
    });
  });

  it('leaves an audit trail that verifies', async () => {
    const result = await verifyAudit(ds, TEST_AUDIT_KEY);
    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.eventsChecked).toBeGreaterThan(20);
  });
});
