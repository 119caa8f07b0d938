import IORedis from 'ioredis';
import { agentBusKeys } from '../../libs/agent-link/src/agent-bus';
import { Api } from '../support/http';
import { RcflowProcess, waitUntil } from '../support/processes';
import { RawAgent, presence } from '../support/raw-agent';
import { OperatorWorld, Stack, seedOperatorWorld, sessionReaches, startStack } from '../support/stack';

jest.setTimeout(120_000);

/**
 * The agent channel at the protocol level, with hand-driven WebSocket agents: enrolment and
 * credentials, command delivery across two API processes, duplicate, late and foreign answers,
 * and malformed or abusive frames.
 */
describe('agent channel (two api processes, a worker, raw WebSocket agents)', () => {
  let stack: Stack;
  let world: OperatorWorld;
  let admin: Api;
  let apiB: Api;
  let alice: Api;
  const agents: RawAgent[] = [];

  beforeAll(async () => {
    stack = await startStack(
      'agents',
      {
        AGENT_TRANSPORT: 'websocket',
        AGENT_HEARTBEAT_SECONDS: '1',
        PRESENCE_GRACE_SECONDS: '5',
        AGENT_LOST_GRACE_SECONDS: '1',
        SETTINGS_ACK_TIMEOUT_MS: '3000',
        CONSENT_TIMEOUT_MS: '2000',
        JOB_ATTEMPTS: '2',
        AGENT_MESSAGES_PER_SECOND: '20',
      },
      2,
    );
    admin = stack.admin;
    apiB = stack.apis[1].api;
    world = await seedOperatorWorld(admin);
    alice = admin.as(world.keys.alice);
  });
  afterAll(async () => {
    try {
      for (const a of agents) a.close();
    } finally {
      await stack?.stop();
    }
  });

  /**
   * Answers the API has accepted for `commandId` and handed to the workers (the bus keeps them in
   * a list). Barrier: once it has grown, the API has processed the frame that carried the answer.
   */
  const answersTo = async (commandId: string) => {
    const redis = new IORedis(stack.redis.url, { maxRetriesPerRequest: 1 });
    try {
      return await redis.llen(agentBusKeys(stack.env.QUEUE_PREFIX).replies(commandId));
    } finally {
      redis.disconnect();
    }
  };

  const token = async (body: Record<string, unknown>) => {
    const r = await admin.post('/v1/enrolment-tokens', body);
    expect(r.status).toBe(201);
    return r.body.token as string;
  };
  const enrol = (api: Api, tokenValue: string, hostname: string, p = presence()) =>
    api.post('/v1/agent/enrol', { token: tokenValue, hostname, presence: p });

  /** Enrols `hostname` through API A, puts it in Desks, connects it to API B and says hello. */
  const enrolled = async (hostname: string, p = presence()) => {
    const r = await enrol(admin, await token({ hostname }), hostname, p);
    expect(r.status).toBe(201);
    await admin.put(`/v1/collections/${world.ids.desks}/members/${r.body.deviceId}`);
    const agent = await RawAgent.connect(apiB.base, r.body.credential);
    agents.push(agent);
    await agent.hello(p);
    return { agent, deviceId: r.body.deviceId as string, credential: r.body.credential as string };
  };

  /** Answers settings and consent like a cooperative agent, from the frame index `from` on. */
  const cooperate = async (agent: RawAgent, sessionId: string, consent: 'granted' | 'denied' | 'timed_out' = 'granted', from = 0) => {
    const apply = agent.received.slice(from).find((m) => m.type === 'apply_settings');
    if (apply?.type === 'apply_settings')
      agent.send({ v: 1, type: 'settings_applied', commandId: apply.commandId, versionHash: apply.versionHash });
    const start = await agent.next('start_session', 15_000, from);
    agent.send({
      v: 1,
      type: 'consent',
      commandId: start.commandId,
      sessionId,
      outcome: consent,
      answeredBy: consent === 'timed_out' ? null : 'CONTOSO\\carol',
    });
    if (consent === 'granted')
      agent.send({
        v: 1,
        type: 'session_started',
        commandId: start.commandId,
        sessionId,
        connect: { host: 'pc.contoso.test', port: 5938 },
      });
    return start;
  };

  it('enrols once per token, refuses reused, expired, revoked and mismatched tokens, and audits each refusal', async () => {
    const t = await token({ hostname: 'AG-ENROL' });
    expect((await enrol(admin, t, 'AG-OTHER')).body.error.message).toMatch(/bound to another host name/);
    const ok = await enrol(admin, t, 'ag-enrol');
    expect(ok.status).toBe(201);
    expect(ok.body.credential).toMatch(/^rcd_/);
    const reused = await enrol(admin, t, 'AG-ENROL');
    expect(reused.status).toBe(401);
    expect(reused.body.error.message).toBe('enrolment token already used');

    const expired = await token({});
    await stack.ds.query(`UPDATE enrolment_tokens SET expires_at = now() - interval '1 second' WHERE id = $1`, [expired.slice(4, 40)]);
    expect((await enrol(admin, expired, 'AG-X')).body.error.message).toBe('enrolment token expired');

    const revoked = await token({});
    expect((await admin.req('DELETE', `/v1/enrolment-tokens/${revoked.slice(4, 40)}`)).status).toBe(200);
    expect((await enrol(admin, revoked, 'AG-X')).body.error.message).toBe('enrolment token revoked');
    expect((await enrol(admin, 'rce_00000000-0000-4000-8000-000000000000.' + 'x'.repeat(43), 'AG-X')).status).toBe(401);
    expect((await enrol(admin, t, 'bad host name!')).status).toBe(400);

    const refusals = await stack.ds.query(
      `SELECT data->>'reason' AS reason FROM audit_events WHERE action = 'agent.enrolment' AND outcome = 'refused'`,
    );
    expect(refusals.map((r: { reason: string }) => r.reason)).toEqual(
      expect.arrayContaining([
        'enrolment token already used',
        'enrolment token expired',
        'enrolment token revoked',
        'unknown enrolment token',
      ]),
    );
  });

  it('refuses unknown and revoked credentials on the socket', async () => {
    await expect(RawAgent.connect(apiB.base, 'rcd_00000000-0000-4000-8000-000000000000.' + 'x'.repeat(43))).rejects.toThrow(/401/);
    await expect(RawAgent.connect(apiB.base, 'nonsense')).rejects.toThrow(/401/);
    const { deviceId, credential, agent } = await enrolled('AG-REVOKED');
    agent.close();
    expect((await admin.post(`/v1/devices/${deviceId}/credentials/revoke`)).body.revoked).toBe(1);
    await expect(RawAgent.connect(apiB.base, credential)).rejects.toThrow(/401/);
  });

  it('records presence from hello and heartbeats', async () => {
    const { agent, deviceId } = await enrolled('AG-PRESENCE');
    agent.send({ v: 1, type: 'heartbeat', presence: presence({ loggedOnUser: 'CONTOSO\\erin', locked: true, agentVersion: '1.3.0' }) });
    await waitUntil(async () => (await admin.get(`/v1/devices/${deviceId}`)).body.loggedOnUser === 'CONTOSO\\erin', 5000, 'presence');
    const d = (await admin.get(`/v1/devices/${deviceId}`)).body;
    expect(d).toMatchObject({ locked: true, agentVersion: '1.3.0', enrolled: true });
  });

  it('refreshes the last heartbeat of an agent whose heartbeats repeat its presence (written in batches)', async () => {
    const { agent, deviceId } = await enrolled('AG-STEADY');
    await stack.ds.query(`UPDATE devices SET last_heartbeat_at = now() - interval '1 hour' WHERE id = $1`, [deviceId]);
    agent.send({ v: 1, type: 'heartbeat', presence: presence() });
    await waitUntil(
      async () =>
        (await stack.ds.query(`SELECT last_heartbeat_at > now() - interval '1 minute' AS fresh FROM devices WHERE id = $1`, [deviceId]))[0]
          .fresh,
      5000,
      'the batched heartbeat',
    );
  });

  it('reaches an agent on the other API process: push, consent and start; then skips the push when current', async () => {
    const { agent, deviceId } = await enrolled('AG-1');
    const s = await alice.post('/v1/sessions', { deviceId, type: 'remote-control', access: 'full' });
    expect(s.status).toBe(202);
    const apply = await agent.next('apply_settings');
    expect(apply.settings.permittedViewers).toEqual(['HELPDESK']);
    const start = await cooperate(agent, s.body.id);
    expect(start).toMatchObject({
      viewer: 'alice',
      sessionType: 'remote-control',
      access: 'full',
      consent: { rule: 'prompt_user', onTimeout: 'deny' },
    });
    expect(start.notification).toEqual({ taskbarIcon: true, connectionBar: true, audibleSignal: 'begin_end' });
    await sessionReaches(alice, s.body.id, ['active']);
    const active = (await alice.get(`/v1/sessions/${s.body.id}`)).body;
    expect(active.timeline.at(-1).data).toMatchObject({ consentRule: 'prompt_user', consent: 'granted', answeredBy: 'CONTOSO\\carol' });

    // Duplicate and late answers change nothing.
    const before = (await alice.get(`/v1/sessions/${s.body.id}`)).body;
    const [applyAnswers, startAnswers] = [await answersTo(apply.commandId), await answersTo(start.commandId)];
    agent.send({ v: 1, type: 'settings_applied', commandId: apply.commandId, versionHash: apply.versionHash });
    agent.send({ v: 1, type: 'session_started', commandId: start.commandId, sessionId: s.body.id, connect: { host: 'x', port: 1 } });
    // Barrier: the API took both duplicates and handed them on, as it did the first answers.
    await waitUntil(
      async () => (await answersTo(apply.commandId)) > applyAnswers && (await answersTo(start.commandId)) > startAnswers,
      10_000,
      'the duplicates to reach the bus',
    );
    const after = (await alice.get(`/v1/sessions/${s.body.id}`)).body;
    expect({ version: after.version, state: after.state, events: after.timeline.length }).toEqual({
      version: before.version,
      state: 'active',
      events: before.timeline.length,
    });

    // The viewer's token works once.
    const vt = await alice.post(`/v1/sessions/${s.body.id}/viewer-token`);
    expect(vt.status).toBe(201);
    expect(vt.body.connect).toEqual({ host: 'pc.contoso.test', port: 5938 });
    agent.send({ v: 1, type: 'viewer_token_check', requestId: 'r1', sessionId: s.body.id, token: vt.body.token });
    expect(await agent.next('viewer_token_result')).toMatchObject({ requestId: 'r1', valid: true, viewer: 'alice' });
    const n = agent.received.length;
    agent.send({ v: 1, type: 'viewer_token_check', requestId: 'r2', sessionId: s.body.id, token: vt.body.token });
    expect(await agent.next('viewer_token_result', 5000, n)).toMatchObject({ requestId: 'r2', valid: false, reason: 'token already used' });
    expect((await admin.as(world.keys.bob).post(`/v1/sessions/${s.body.id}/viewer-token`)).status).toBe(403);

    // The viewer ends it; the agent is told.
    expect((await alice.post(`/v1/sessions/${s.body.id}/cancel`)).body.state).toBe('ended');
    const end = await agent.next('end_session');
    agent.send({ v: 1, type: 'session_ended', sessionId: s.body.id, by: 'viewer', reason: null, commandId: end.commandId });

    // The agent now reports the applied version: no second push.
    agent.send({ v: 1, type: 'heartbeat', presence: presence({ appliedSettingsHash: apply.versionHash }) });
    await waitUntil(
      async () => (await admin.get(`/v1/devices/${deviceId}`)).body.appliedSettingsHash === apply.versionHash,
      5000,
      'applied hash',
    );
    const from = agent.received.length;
    const s2 = await alice.post('/v1/sessions', { deviceId, type: 'remote-control', access: 'view' });
    await cooperate(agent, s2.body.id, 'granted', from);
    await sessionReaches(alice, s2.body.id, ['active']);
    expect(agent.received.slice(from).some((m) => m.type === 'apply_settings')).toBe(false);
    const timeline = (await alice.get(`/v1/sessions/${s2.body.id}`)).body.timeline;
    expect(timeline.find((e: { state: string }) => e.state === 'awaiting_consent').data.settings).toBe('already_current');

    // The user ends it at the device.
    agent.send({ v: 1, type: 'session_ended', sessionId: s2.body.id, by: 'user', reason: 'done', commandId: null });
    await sessionReaches(alice, s2.body.id, ['ended']);
    // Nothing the duplicates above could have done later shows in the first session's history either.
    expect((await alice.get(`/v1/sessions/${s.body.id}`)).body.timeline.map((e: { state: string }) => e.state)).toEqual([
      'requested',
      'validating',
      'eligible',
      'pushing_settings',
      'awaiting_consent',
      'active',
      'ended',
    ]);
    const ended = (await alice.get(`/v1/sessions/${s2.body.id}`)).body;
    expect(ended.timeline.at(-1)).toMatchObject({
      state: 'ended',
      actor: { kind: 'agent', id: deviceId },
      data: expect.objectContaining({ by: 'user' }),
    });
    expect(ended.durationSeconds).not.toBeNull();
  });

  it('records a denial and a consent timeout with who answered', async () => {
    const { agent, deviceId } = await enrolled('AG-2');
    const denied = await alice.post('/v1/sessions', { deviceId, type: 'remote-control', access: 'full' });
    await agent.next('apply_settings');
    await cooperate(agent, denied.body.id, 'denied');
    await sessionReaches(alice, denied.body.id, ['denied']);
    expect((await alice.get(`/v1/sessions/${denied.body.id}`)).body.timeline.at(-1).data.answeredBy).toBe('CONTOSO\\carol');

    const from = agent.received.length;
    const silent = await alice.post('/v1/sessions', { deviceId, type: 'remote-control', access: 'full' });
    await cooperate(agent, silent.body.id, 'timed_out', from);
    await sessionReaches(alice, silent.body.id, ['consent_timeout']);
  });

  it('fails with agent_timeout when the agent never acknowledges, and a late acknowledgement changes nothing', async () => {
    const { agent, deviceId } = await enrolled('AG-SILENT');
    const s = await alice.post('/v1/sessions', { deviceId, type: 'remote-control', access: 'full' });
    const apply = await agent.next('apply_settings');
    await sessionReaches(alice, s.body.id, ['failed'], 30_000);
    const failed = (await alice.get(`/v1/sessions/${s.body.id}`)).body;
    expect(failed.failureCause).toBe('agent_timeout');
    expect(await answersTo(apply.commandId)).toBe(0);
    agent.send({ v: 1, type: 'settings_applied', commandId: apply.commandId, versionHash: apply.versionHash });
    // Barrier: the API took the late answer and handed it on; the failed session ignores it.
    await waitUntil(async () => (await answersTo(apply.commandId)) === 1, 10_000, 'the late answer to reach the bus');
    const after = (await alice.get(`/v1/sessions/${s.body.id}`)).body;
    expect({ version: after.version, state: after.state, events: after.timeline.length }).toEqual({
      version: failed.version,
      state: 'failed',
      events: failed.timeline.length,
    });
  });

  it('delivers a command queued while the agent was offline when it reconnects', async () => {
    const { agent, credential, deviceId } = await enrolled('AG-LATE');
    agent.close();
    const s = await alice.post('/v1/sessions', { deviceId, type: 'remote-control', access: 'full' });
    await sessionReaches(alice, s.body.id, ['pushing_settings']);
    const again = await RawAgent.connect(apiB.base, credential);
    agents.push(again);
    await again.hello();
    await again.next('apply_settings');
    await cooperate(again, s.body.id);
    await sessionReaches(alice, s.body.id, ['active']);
  });

  it('interrupts an active session whose agent disconnects and stays away', async () => {
    const { agent, deviceId } = await enrolled('AG-LOST');
    const s = await alice.post('/v1/sessions', { deviceId, type: 'remote-control', access: 'full' });
    await agent.next('apply_settings');
    await cooperate(agent, s.body.id);
    await sessionReaches(alice, s.body.id, ['active']);
    agent.close();
    await sessionReaches(alice, s.body.id, ['interrupted'], 30_000);
    expect((await alice.get(`/v1/sessions/${s.body.id}`)).body.timeline.at(-1).reason).toMatch(/agent silent/);
  });

  it('binds every message to the credential’s device: a stolen credential cannot act for another device', async () => {
    const victim = await enrolled('AG-VICTIM');
    const thief = await enrolled('AG-THIEF');
    const s = await alice.post('/v1/sessions', { deviceId: victim.deviceId, type: 'remote-control', access: 'full' });
    const apply = await victim.agent.next('apply_settings');
    // The thief answers the victim's command and claims the victim's session ended.
    thief.agent.send({ v: 1, type: 'settings_applied', commandId: apply.commandId, versionHash: apply.versionHash });
    expect((await thief.agent.next('error')).code).toBe('unknown_command');
    await cooperate(victim.agent, s.body.id);
    await sessionReaches(alice, s.body.id, ['active']);
    const n = thief.agent.received.length;
    thief.agent.send({ v: 1, type: 'session_ended', sessionId: s.body.id, by: 'user', reason: null, commandId: null });
    expect((await thief.agent.next('error', 5000, n)).message).toMatch(/not a session of this device/);
    expect(await (async () => (await alice.get(`/v1/sessions/${s.body.id}`)).body.state)()).toBe('active');
  });

  it('answers malformed, wrong-version and unexpected frames with an error and keeps serving', async () => {
    const { agent, deviceId } = await enrolled('AG-BAD');
    const expectError = async (frame: unknown, code: string) => {
      const n = agent.received.length;
      agent.send(frame);
      expect((await agent.next('error', 5000, n)).code).toBe(code);
    };
    await expectError('{not json', 'bad_frame');
    await expectError({ v: 2, type: 'heartbeat', presence: presence() }, 'bad_version');
    await expectError({ v: 1, type: 'heartbeat', presence: { ...presence(), extra: 1 } }, 'bad_frame');
    await expectError({ v: 1, type: 'teleport' }, 'bad_frame');
    await expectError(
      {
        v: 1,
        type: 'consent',
        commandId: 'never-sent',
        sessionId: '00000000-0000-4000-8000-000000000000',
        outcome: 'granted',
        answeredBy: null,
      },
      'unknown_command',
    );
    // Still served: a later frame on the same connection takes effect.
    agent.send({ v: 1, type: 'heartbeat', presence: presence({ loggedOnUser: 'CONTOSO\\after-errors' }) });
    await waitUntil(
      async () => (await admin.get(`/v1/devices/${deviceId}`)).body.loggedOnUser === 'CONTOSO\\after-errors',
      5000,
      'the heartbeat after the errors',
    );
    expect(agent.ws.readyState).toBe(agent.ws.OPEN);
  });

  it('closes a connection that sends an oversized frame, and rate-limits a flood without starving others', async () => {
    const big = await enrolled('AG-BIG');
    const closed = new Promise<number>((r) => big.agent.ws.once('close', (code) => r(code)));
    big.agent.send('x'.repeat(70 * 1024));
    expect(await closed).toBe(1009);

    const flood = await enrolled('AG-FLOOD');
    const calm = await enrolled('AG-CALM');
    for (let i = 0; i < 300; i++) flood.agent.send({ v: 1, type: 'heartbeat', presence: presence() });
    expect((await flood.agent.next('error')).code).toBe('rate_limited');
    const s = await alice.post('/v1/sessions', { deviceId: calm.deviceId, type: 'remote-control', access: 'full' });
    await calm.agent.next('apply_settings');
    await cooperate(calm.agent, s.body.id);
    await sessionReaches(alice, s.body.id, ['active']);
  });

  it('reaches agents after Redis restarts empty, also through an API process that started while Redis was down', async () => {
    const { credential, deviceId } = await enrolled('AG-REDIS');
    const b = stack.apis[1];
    await b.proc.stop('SIGTERM');
    await stack.redis.kill();
    b.proc = RcflowProcess.start('api', { ...stack.env, PORT: new URL(b.api.base).port });
    await b.proc.waitFor('api listening', 90_000);
    expect(b.proc.output).toMatch(/cannot subscribe to agent commands yet/);
    await stack.redis.startProcess();
    const agent = await RawAgent.connect(apiB.base, credential);
    agents.push(agent);
    await agent.hello();
    // The command is queued after the hello: it reaches the agent only through the notification.
    const s = await alice.post('/v1/sessions', { deviceId, type: 'remote-control', access: 'full' });
    expect(s.status).toBe(202);
    await agent.next('apply_settings', 30_000);
    await cooperate(agent, s.body.id);
    await sessionReaches(alice, s.body.id, ['active'], 30_000);
  });

  it('keeps the audit chain verifiable through all of it', async () => {
    const r = await admin.get('/v1/audit/verify');
    expect(r.body.problems).toEqual([]);
    expect(r.body.ok).toBe(true);
  });
});
