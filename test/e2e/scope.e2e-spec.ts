import { WebSocket } from 'ws';
import { Api } from '../support/http';
import { waitUntil } from '../support/processes';
import { RawAgent, presence } from '../support/raw-agent';
import { OperatorWorld, Stack, addDevice, seedOperatorWorld, sessionReaches, startStack } from '../support/stack';
import { tearDown } from '../support/teardown';

jest.setTimeout(120_000);

/**
 * Every object in the caller's collection scope, through the real processes (two API processes,
 * a worker, raw WebSocket agents): the audit trail, enrolment tokens and device credentials, a
 * revoked credential's open socket, and the sessions of a principal whose grant is taken away.
 */
describe('scope everywhere (two api processes, a worker, raw WebSocket agents)', () => {
  let stack: Stack;
  let world: OperatorWorld;
  let admin: Api;
  let apiB: Api;
  /** full_administrator over Desks only. */
  let deskAdmin: Api;
  /** read_only_auditor over Desks only. */
  let deskAuditor: Api;
  let inDevice: string;
  let outDevice: string;
  const agents: RawAgent[] = [];
  let starting: Promise<Stack> | undefined;

  const principal = async (name: string, role: string, collectionIds: string[] | null) => {
    const id = (await admin.post('/v1/principals', { name, kind: 'user' })).body.id as string;
    const ra = await admin.post('/v1/role-assignments', { principalId: id, role, collectionIds });
    expect(ra.status).toBe(201);
    const api = admin.as((await admin.post('/v1/api-keys', { principalId: id, name: 'test' })).body.key);
    return { id, api, assignmentId: ra.body.id as string };
  };

  beforeAll(async () => {
    stack = await (starting = startStack(
      'scope',
      {
        AGENT_TRANSPORT: 'websocket',
        AGENT_HEARTBEAT_SECONDS: '1',
        PRESENCE_GRACE_SECONDS: '30',
        SETTINGS_ACK_TIMEOUT_MS: '3000',
        CONSENT_TIMEOUT_MS: '30000',
        JOB_ATTEMPTS: '2',
      },
      2,
    ));
    admin = stack.admin;
    apiB = stack.apis[1].api;
    world = await seedOperatorWorld(admin, { permittedViewers: ['HELPDESK', 'vic', 'wes'] });
    deskAdmin = (await principal('desk-admin', 'full_administrator', [world.ids.desks])).api;
    deskAuditor = (await principal('desk-auditor', 'read_only_auditor', [world.ids.desks])).api;
    inDevice = await addDevice(admin, world.ids.desks, 'SC-IN');
    outDevice = await addDevice(admin, world.ids.servers, 'SC-OUT');
  });
  afterAll(() =>
    tearDown({
      agents: () => agents.forEach((a) => a.close()),
      stack: async () => (stack ?? (await starting?.catch(() => undefined)))?.stop(),
    }),
  );

  const enrol = (token: string, hostname: string, api = admin) => api.post('/v1/agent/enrol', { token, hostname, presence: presence() });

  /** Enrols `hostname` into Desks, connects its agent to `api` and says hello. */
  const connected = async (hostname: string, api: Api) => {
    const t = await admin.post('/v1/enrolment-tokens', { hostname });
    expect(t.status).toBe(201);
    const r = await enrol(t.body.token, hostname);
    expect(r.status).toBe(201);
    await admin.put(`/v1/collections/${world.ids.desks}/members/${r.body.deviceId}`);
    const agent = await RawAgent.connect(api.base, r.body.credential);
    agents.push(agent);
    await agent.hello();
    return { agent, deviceId: r.body.deviceId as string, credential: r.body.credential as string };
  };

  /** Drives a session of `viewer` on the agent's device to active. */
  const active = async (viewer: Api, agent: RawAgent, deviceId: string) => {
    const s = await viewer.post('/v1/sessions', { deviceId, type: 'remote-control', access: 'full', reason: 'scope test' });
    expect(s.status).toBe(202);
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
    agent.send({ v: 1, type: 'session_started', commandId: start.commandId, sessionId: s.body.id, connect: { host: 'pc', port: 5938 } });
    await sessionReaches(viewer, s.body.id, ['active']);
    return s.body.id as string;
  };

  interface Line {
    deviceId: string | null;
    sessionId: string | null;
  }
  /** An export's lines (the client parses a one-line body as JSON already). */
  const ndjson = (body: unknown): Line[] =>
    body === null
      ? []
      : typeof body === 'string'
        ? body
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Line)
        : [body as Line];

  it('shows a scoped caller only the audit events of devices in its scope, and refuses it the whole-trail verification', async () => {
    // A session on the out-of-scope device: its events carry its session and device ids.
    const outSession = (await admin.post('/v1/sessions', { deviceId: outDevice, type: 'remote-control', access: 'full', reason: 'x' })).body
      .id as string;
    await sessionReaches(admin, outSession, ['rejected', 'failed', 'cancelled']);
    expect((await admin.get(`/v1/audit?deviceId=${outDevice}`)).body.items.length).toBeGreaterThan(0);
    expect((await admin.get(`/v1/audit?sessionId=${outSession}`)).body.items.length).toBeGreaterThan(0);

    for (const caller of [deskAuditor, deskAdmin]) {
      const byDevice = await caller.get(`/v1/audit?deviceId=${outDevice}`);
      expect({ status: byDevice.status, items: byDevice.body.items }).toEqual({ status: 200, items: [] });
      const bySession = await caller.get(`/v1/audit?sessionId=${outSession}`);
      expect({ status: bySession.status, items: bySession.body.items }).toEqual({ status: 200, items: [] });
      const exported = await caller.req('GET', `/v1/audit/export?deviceId=${outDevice}`);
      expect({ status: exported.status, lines: ndjson(exported.body) }).toEqual({ status: 200, lines: [] });

      const own = await caller.get(`/v1/audit?deviceId=${inDevice}&limit=500`);
      expect(own.body.items.length).toBeGreaterThan(0);
      // Unfiltered: only events about a device in Desks; none about no device (principals, keys, collections).
      const all = await caller.get('/v1/audit?limit=500');
      expect(all.status).toBe(200);
      const desks = new Set(
        (await admin.get(`/v1/devices?collectionId=${world.ids.desks}&limit=500`)).body.items.map((d: { id: string }) => d.id),
      );
      expect(all.body.items.length).toBeGreaterThan(0);
      expect(all.body.items.filter((e: { deviceId: string | null }) => !e.deviceId || !desks.has(e.deviceId))).toEqual([]);
      const allExported = ndjson((await caller.req('GET', '/v1/audit/export')).body);
      expect(allExported.length).toBeGreaterThan(0);
      expect(allExported.filter((e) => !e.deviceId || !desks.has(e.deviceId))).toEqual([]);

      const verify = await caller.get('/v1/audit/verify');
      expect({ status: verify.status, code: verify.body.error?.code }).toEqual({ status: 403, code: 'forbidden' });
    }
    // Unscoped callers see events about no device too, and verify.
    expect((await admin.get('/v1/audit?limit=500')).body.items.some((e: { deviceId: string | null }) => e.deviceId === null)).toBe(true);
    expect((await admin.get('/v1/audit/verify')).body.ok).toBe(true);
  });

  it('keeps enrolment tokens and credential revocation of a scoped administrator within its scope, and refuses takeovers', async () => {
    const credentialsOf = async (deviceId: string) =>
      (await stack.ds.query(`SELECT count(*)::int AS n FROM device_credentials WHERE device_id = $1`, [deviceId]))[0].n as number;

    // Credentials of a device outside its scope: 404, as GET /v1/devices/:id answers.
    expect((await deskAdmin.get(`/v1/devices/${outDevice}`)).status).toBe(404);
    expect((await deskAdmin.post(`/v1/devices/${outDevice}/credentials/revoke`)).status).toBe(404);
    expect((await deskAdmin.post(`/v1/devices/${inDevice}/credentials/revoke`)).status).toBe(200);

    // No token for a host or device outside its scope, none without a collection of its own.
    expect((await deskAdmin.post('/v1/enrolment-tokens', { hostname: 'SC-OUT', collectionId: world.ids.desks })).status).toBe(404);
    expect((await deskAdmin.post('/v1/enrolment-tokens', { deviceId: outDevice })).status).toBe(404);
    expect((await deskAdmin.post('/v1/enrolment-tokens', { collectionId: world.ids.servers })).status).toBe(403);
    expect((await deskAdmin.post('/v1/enrolment-tokens', {})).status).toBe(422);

    // Its unbound token creates new devices only, into Desks.
    const fleet = await deskAdmin.post('/v1/enrolment-tokens', { collectionId: world.ids.desks, maxUses: 5 });
    expect(fleet.status).toBe(201);
    const created = await enrol(fleet.body.token, 'SC-NEW');
    expect(created.status).toBe(201);
    expect((await deskAdmin.get(`/v1/devices/${created.body.deviceId}`)).body.collectionIds).toEqual([world.ids.desks]);
    const before = await credentialsOf(outDevice);
    const takeover = await enrol(fleet.body.token, 'sc-out');
    expect(takeover.status).toBe(401);
    expect(takeover.body.error.message).toMatch(/already exists/);
    // Nor does an unbound token of an administrator over everything replace a device's credential.
    const rootFleet = await admin.post('/v1/enrolment-tokens', { maxUses: 5 });
    expect((await enrol(rootFleet.body.token, 'SC-OUT')).status).toBe(401);
    expect(await credentialsOf(outDevice)).toBe(before);
    // A device registered in Desks ahead of its agent (never keyed) is enrolled by a Desks token, once;
    // keyed, it takes a token bound to it like any other.
    const waiting = await addDevice(admin, world.ids.desks, 'SC-WAITS');
    expect((await enrol(rootFleet.body.token, 'SC-WAITS')).status).toBe(401);
    const claimed = await enrol(fleet.body.token, 'sc-waits');
    expect({ status: claimed.status, deviceId: claimed.body.deviceId }).toEqual({ status: 201, deviceId: waiting });
    expect((await enrol(fleet.body.token, 'SC-WAITS')).status).toBe(401);
    expect(await credentialsOf(waiting)).toBe(1);

    // Re-key: a token bound to the device, by someone scoped over it; audited.
    const rekey = await deskAdmin.post('/v1/enrolment-tokens', { deviceId: inDevice });
    expect(rekey.status).toBe(201);
    expect((await enrol(rekey.body.token, 'SC-OTHER')).status).toBe(401);
    const rekeyed = await enrol(rekey.body.token, 'sc-in');
    expect({ status: rekeyed.status, deviceId: rekeyed.body.deviceId }).toEqual({ status: 201, deviceId: inDevice });
    const events = await stack.ds.query(
      `SELECT action, data->>'created' AS created FROM audit_events WHERE device_id = $1 AND action IN ('enrolment_token.created', 'agent.enrolled') ORDER BY id`,
      [inDevice],
    );
    expect(events).toEqual([
      { action: 'enrolment_token.created', created: null },
      { action: 'agent.enrolled', created: 'false' },
    ]);

    // Tokens of others: invisible and not revocable.
    const rootId = rootFleet.body.id as string;
    expect((await deskAdmin.get('/v1/enrolment-tokens')).body.items.map((t: { id: string }) => t.id)).not.toContain(rootId);
    expect((await deskAdmin.req('DELETE', `/v1/enrolment-tokens/${rootId}`)).status).toBe(404);
    expect((await deskAdmin.req('DELETE', `/v1/enrolment-tokens/${fleet.body.id}`)).status).toBe(200);
  });

  it('closes a revoked device’s socket on the other API process within a second; its sessions never become active', async () => {
    const { agent, deviceId, credential } = await connected('SC-WS', apiB);
    const closed = new Promise<number>((resolve) => agent.ws.once('close', () => resolve(Date.now())));
    const revokedAt = Date.now();
    expect((await admin.post(`/v1/devices/${deviceId}/credentials/revoke`)).status).toBe(200);
    const at = await Promise.race([closed, new Promise<null>((r) => setTimeout(() => r(null), 3000))]);
    expect(at).not.toBeNull();
    expect(at! - revokedAt).toBeLessThan(1500);
    expect(agent.ws.readyState).toBe(WebSocket.CLOSED);
    await expect(RawAgent.connect(apiB.base, credential)).rejects.toThrow(/401/);

    const alice = admin.as(world.keys.alice);
    const r = await alice.post('/v1/sessions', { deviceId, type: 'remote-control', access: 'full', reason: 'after revoke' });
    expect(r.status).toBe(202);
    expect(await sessionReaches(alice, r.body.id, ['failed', 'rejected', 'active'])).not.toBe('active');
  });

  it('refuses viewer tokens at once and ends active sessions when a grant is removed, the principal disabled or the device leaves the collection', async () => {
    const vic = await principal('vic', 'remote_tools_operator', [world.ids.desks]);
    const wes = await principal('wes', 'remote_tools_operator', [world.ids.desks]);
    const a = await connected('SC-VIC', admin);
    const b = await connected('SC-WES', apiB);
    const vicSession = await active(vic.api, a.agent, a.deviceId);
    const wesSession = await active(wes.api, b.agent, b.deviceId);
    const alice = admin.as(world.keys.alice);
    const c = await connected('SC-ALICE', admin);
    const aliceSession = await active(alice, c.agent, c.deviceId);
    expect((await vic.api.post(`/v1/sessions/${vicSession}/viewer-token`)).status).toBe(201);

    expect((await admin.req('DELETE', `/v1/role-assignments/${vic.assignmentId}`)).status).toBe(200);
    const refused = await vic.api.post(`/v1/sessions/${vicSession}/viewer-token`);
    expect(refused.status).toBe(403);
    expect((await admin.req('PATCH', `/v1/principals/${wes.id}`, { disabled: true })).status).toBe(200);
    expect((await admin.req('DELETE', `/v1/collections/${world.ids.desks}/members/${c.deviceId}`)).status).toBe(200);

    for (const [id, agent] of [
      [vicSession, a.agent],
      [wesSession, b.agent],
      [aliceSession, c.agent],
    ] as const) {
      await waitUntil(async () => (await admin.get(`/v1/sessions/${id}`)).body.state === 'ended', 10_000, `session ${id} ended`);
      const [ended] = await stack.ds.query(
        `SELECT action, outcome, reason, actor_kind FROM audit_events WHERE stream = $1 AND outcome = 'ended'`,
        [`session:${id}`],
      );
      expect(ended).toMatchObject({ outcome: 'ended', reason: 'access_revoked' });
      // The agent is told to end it.
      expect((await agent.next('end_session')).sessionId).toBe(id);
    }
    expect((await admin.get('/v1/audit/verify')).body.ok).toBe(true);
  });
});
