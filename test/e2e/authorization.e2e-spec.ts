import { Api } from '../support/http';
import { waitUntil } from '../support/processes';
import { RawAgent, presence } from '../support/raw-agent';
import { OperatorWorld, Stack, addDevice, seedOperatorWorld, sessionReaches, startStack } from '../support/stack';
import { tearDown } from '../support/teardown';

/**
 * Who may do what, through the real API processes: permissions whose only gate is a service
 * check (cancel), authority that a disabled group must stop passing on, the viewer token's
 * lifetime, and an Idempotency-Key held to every field of its request.
 */
describe('authorization at the API (api and worker processes, raw WebSocket agents)', () => {
  let stack: Stack;
  let world: OperatorWorld;
  let admin: Api;
  let alice: Api;
  let bob: Api;
  let bot: Api;
  /** A read-only auditor over Desks: may read every session there, may cancel none. */
  let auditor: Api;
  const agents: RawAgent[] = [];

  let starting: Promise<Stack> | undefined;

  beforeAll(async () => {
    stack = await (starting = startStack('authz', {
      AGENT_TRANSPORT: 'websocket',
      AGENT_HEARTBEAT_SECONDS: '1',
      PRESENCE_GRACE_SECONDS: '30',
      // Long enough that a session waiting for its settings stays cancellable while the test acts.
      SETTINGS_ACK_TIMEOUT_MS: '60000',
      CONSENT_TIMEOUT_MS: '30000',
    }));
    admin = stack.admin;
    world = await seedOperatorWorld(admin);
    alice = admin.as(world.keys.alice);
    bob = admin.as(world.keys.bob);
    bot = admin.as(world.keys.bot);
    const id = (await admin.post('/v1/principals', { name: 'audrey', kind: 'user' })).body.id;
    expect(
      (await admin.post('/v1/role-assignments', { principalId: id, role: 'read_only_auditor', collectionIds: [world.ids.desks] })).status,
    ).toBe(201);
    auditor = admin.as((await admin.post('/v1/api-keys', { principalId: id, name: 'test' })).body.key);
  });
  afterAll(() =>
    tearDown({
      agents: () => agents.forEach((a) => a.close()),
      // A start that outlived beforeAll's timeout is still stopped once it finishes.
      stack: async () => (stack ?? (await starting?.catch(() => undefined)))?.stop(),
    }),
  );

  /** Enrols `hostname`, puts it in Desks, connects its agent and says hello. */
  const enrolled = async (hostname: string) => {
    const t = await admin.post('/v1/enrolment-tokens', { hostname });
    expect(t.status).toBe(201);
    const r = await admin.post('/v1/agent/enrol', { token: t.body.token, hostname, presence: presence() });
    expect(r.status).toBe(201);
    await admin.put(`/v1/collections/${world.ids.desks}/members/${r.body.deviceId}`);
    const agent = await RawAgent.connect(admin.base, r.body.credential);
    agents.push(agent);
    await agent.hello();
    return { agent, deviceId: r.body.deviceId as string };
  };

  it('refuses cancel to a caller who may read the session but holds no session.cancel over it', async () => {
    const { agent, deviceId } = await enrolled('AZ-CANCEL');
    const s = await alice.post('/v1/sessions', { deviceId, type: 'remote-control', access: 'full' });
    expect(s.status).toBe(202);
    await agent.next('apply_settings'); // not answered: the session waits in pushing_settings
    await sessionReaches(alice, s.body.id, ['pushing_settings']);

    expect((await auditor.get(`/v1/sessions/${s.body.id}`)).status).toBe(200);
    const refused = await auditor.post(`/v1/sessions/${s.body.id}/cancel`, { reason: 'not mine to cancel' });
    expect(refused.status).toBe(403);
    expect((await alice.get(`/v1/sessions/${s.body.id}`)).body.state).toBe('pushing_settings');

    // bob neither asked for nor views it, but holds session.cancel over Desks.
    const cancelled = await bob.post(`/v1/sessions/${s.body.id}/cancel`, { reason: 'wrong device' });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.state).toBe('cancelled');
  });

  it('takes away what a group gave once the group is disabled, directly or through nesting', async () => {
    // dave holds nothing himself: he is in TEAM, TEAM is in OPS, OPS is an operator over Desks.
    const mk = async (name: string, kind: string) => (await admin.post('/v1/principals', { name, kind })).body.id as string;
    const dave = await mk('dave', 'user');
    const team = await mk('TEAM', 'group');
    const ops = await mk('OPS', 'group');
    expect((await admin.put(`/v1/principals/${team}/members/${dave}`)).status).toBe(200);
    expect((await admin.put(`/v1/principals/${ops}/members/${team}`)).status).toBe(200);
    expect(
      (await admin.post('/v1/role-assignments', { principalId: ops, role: 'remote_tools_operator', collectionIds: [world.ids.desks] }))
        .status,
    ).toBe(201);
    const daveApi = admin.as((await admin.post('/v1/api-keys', { principalId: dave, name: 'test' })).body.key);
    const deviceId = await addDevice(admin, world.ids.desks, 'AZ-GROUPS');
    const dryRun = () => daveApi.post('/v1/eligibility/check', { deviceId, type: 'remote-control', access: 'full' });
    const setDisabled = async (id: string, disabled: boolean) =>
      expect((await admin.req('PATCH', `/v1/principals/${id}`, { disabled })).status).toBe(200);
    // The guard keeps a caller's grants for a few seconds: wait for the change, bounded.
    const becomes = (status: number, what: string) => waitUntil(async () => (await dryRun()).status === status, 20_000, what);

    expect((await dryRun()).status).toBe(200);
    await setDisabled(team, true);
    await becomes(403, 'a 403 once the group dave is in is disabled');
    await setDisabled(team, false);
    await becomes(200, 'the grant back once the group is enabled again');
    await setDisabled(ops, true);
    await becomes(403, 'a 403 once the group holding the grant is disabled');
    expect((await dryRun()).body.error.message).toMatch(/dave lacks the permission session\.request/);
  });

  it('refuses an expired viewer token, and accepts a current one', async () => {
    const { agent, deviceId } = await enrolled('AZ-TOKEN');
    const s = await alice.post('/v1/sessions', { deviceId, type: 'remote-control', access: 'full' });
    const apply = await agent.next('apply_settings');
    agent.send({ v: 1, type: 'settings_applied', commandId: apply.commandId, versionHash: apply.versionHash });
    const start = await agent.next('start_session');
    agent.send({
      v: 1,
      type: 'consent',
      commandId: start.commandId,
      sessionId: s.body.id,
      outcome: 'granted',
      answeredBy: 'CONTOSO\\carol',
    });
    agent.send({
      v: 1,
      type: 'session_started',
      commandId: start.commandId,
      sessionId: s.body.id,
      connect: { host: 'pc.contoso.test', port: 5938 },
    });
    await sessionReaches(alice, s.body.id, ['active']);

    const check = async (token: string, requestId: string) => {
      const from = agent.received.length;
      agent.send({ v: 1, type: 'viewer_token_check', requestId, sessionId: s.body.id, token });
      return agent.next('viewer_token_result', 10_000, from);
    };
    const stale = (await alice.post(`/v1/sessions/${s.body.id}/viewer-token`)).body.token as string;
    await stack.ds.query(`UPDATE viewer_tokens SET expires_at = now() - interval '1 second' WHERE id = $1`, [stale.slice(4, 40)]);
    expect(await check(stale, 'expired')).toMatchObject({ requestId: 'expired', valid: false, reason: 'token expired' });

    const current = (await alice.post(`/v1/sessions/${s.body.id}/viewer-token`)).body.token as string;
    expect(await check(current, 'current')).toMatchObject({ requestId: 'current', valid: true, viewer: 'alice' });
    const refusals = await stack.ds.query(
      `SELECT reason FROM audit_events WHERE stream = $1 AND action = 'viewer_token.redeemed' AND outcome = 'refused'`,
      [`session-access:${s.body.id}`],
    );
    expect(refusals).toEqual([{ reason: 'token expired' }]);
  });

  it('answers the same Idempotency-Key with another value in any field with 409, and replays the same request', async () => {
    const d1 = await addDevice(admin, world.ids.desks, 'AZ-IDEM-1');
    const d2 = await addDevice(admin, world.ids.desks, 'AZ-IDEM-2');
    const body = { deviceId: d1, viewerId: world.ids.alice, type: 'remote-control', access: 'full', reason: 'printer', ticketRef: 'INC-7' };
    const key = { 'idempotency-key': 'authz-idem-1' };
    const first = await bot.post('/v1/sessions', body, key);
    expect(first.status).toBe(202);
    const again = await bot.post('/v1/sessions', { ...body }, key);
    expect({ status: again.status, id: again.body.id, replayed: again.headers.get('idempotent-replayed') }).toEqual({
      status: 202,
      id: first.body.id,
      replayed: 'true',
    });

    const { reason: _reason, ticketRef: _ticketRef, ...bare } = body;
    const others: Record<string, unknown>[] = [
      { ...body, deviceId: d2 },
      { ...body, viewerId: world.ids.bob },
      { ...bare, ticketRef: body.ticketRef }, // no viewer named: the caller is the viewer
      { ...body, type: 'remote-assistance' },
      { ...body, access: 'view' },
      { ...body, reason: 'printer!' },
      { ...body, ticketRef: 'INC-8' },
      { ...bare, viewerId: body.viewerId, ticketRef: body.ticketRef },
      { ...bare, viewerId: body.viewerId, reason: body.reason },
    ];
    const answers = [];
    for (const other of others) {
      const r = await bot.post('/v1/sessions', other, key);
      answers.push({ other, status: r.status, message: r.body?.error?.message });
    }
    expect(answers).toEqual(
      others.map((other) => ({ other, status: 409, message: 'this Idempotency-Key was already used with a different request body' })),
    );
    expect((await stack.ds.query(`SELECT count(*)::int AS n FROM sessions WHERE requester_id = $1`, [world.ids.bot]))[0].n).toBe(1);
  });
});
