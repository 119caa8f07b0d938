import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Api } from '../support/http';
import { RcflowProcess } from '../support/processes';
import { OperatorWorld, Stack, seedOperatorWorld, sessionReaches, startStack } from '../support/stack';

jest.setTimeout(120_000);

/**
 * The reference agent as a user runs it: a real process per device over a real WebSocket to the
 * second API process, while requests go to the first and the worker reaches the agent through Redis.
 */
describe('reference agent processes', () => {
  let stack: Stack;
  let world: OperatorWorld;
  let admin: Api;
  let alice: Api;
  let agentApi: Api;
  const agents: RcflowProcess[] = [];

  beforeAll(async () => {
    stack = await startStack(
      'refagent',
      {
        AGENT_TRANSPORT: 'websocket',
        AGENT_HEARTBEAT_SECONDS: '1',
        PRESENCE_GRACE_SECONDS: '5',
        AGENT_LOST_GRACE_SECONDS: '1',
        SETTINGS_ACK_TIMEOUT_MS: '5000',
        CONSENT_TIMEOUT_MS: '1500',
      },
      2,
    );
    admin = stack.admin;
    agentApi = stack.apis[1].api;
    world = await seedOperatorWorld(admin, { allowRemCtrlToUnattended: true });
    alice = admin.as(world.keys.alice);
    // Kiosks: remote control on, but never of an unattended computer.
    const kiosks = await admin.post('/v1/collections', { name: 'Kiosks' });
    world.ids.kiosks = kiosks.body.id;
    const locked = await admin.post('/v1/client-settings', {
      name: 'Kiosk RC',
      order: 4,
      remoteTools: { enabled: true, permittedViewers: ['HELPDESK'], allowRemCtrlToUnattended: false },
    });
    await admin.put(`/v1/client-settings/${locked.body.id}/deployments/${world.ids.kiosks}`);
    await admin.post('/v1/role-assignments', {
      principalId: world.ids.helpdesk,
      role: 'remote_tools_operator',
      collectionIds: [world.ids.kiosks],
    });
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop('SIGKILL')));
    await stack?.stop();
  });

  /** Starts a reference agent; on first start it enrols with a fresh token and joins `collection`. */
  const startAgent = async (hostname: string, flags: string[], opts: { stateDir?: string; collection?: string } = {}) => {
    const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), `rcflow-agent-${hostname}-`));
    const args = [
      '--server',
      agentApi.base,
      '--state-dir',
      stateDir,
      '--hostname',
      hostname,
      '--os-family',
      'windows',
      '--agent-version',
      '1.4.0',
      '--domain',
      'CONTOSO',
      ...flags,
    ];
    if (!opts.stateDir) args.push('--enrol', (await admin.post('/v1/enrolment-tokens', { hostname })).body.token);
    const agent = RcflowProcess.start('agent', {}, args);
    agents.push(agent);
    await agent.waitFor('agent connected as');
    const deviceId = /agent connected as ([0-9a-f-]{36})/.exec(agent.output)![1];
    if (!opts.stateDir) await admin.put(`/v1/collections/${opts.collection ?? world.ids.desks}/members/${deviceId}`);
    return { agent, deviceId, stateDir };
  };
  const request = async (deviceId: string, extra: Record<string, unknown> = {}) => {
    const r = await alice.post('/v1/sessions', { deviceId, type: 'remote-control', access: 'full', ...extra });
    expect(r.status).toBe(202);
    return r.body.id as string;
  };
  const lastEvent = async (id: string) => (await alice.get(`/v1/sessions/${id}`)).body.timeline.at(-1);

  it('enrols, applies settings, asks consent and starts; the viewer ends it; after a restart the push is skipped', async () => {
    const { agent, deviceId, stateDir } = await startAgent('REF-1', ['--consent', 'accept', '--user', 'carol']);
    expect(agent.output).toMatch(/agent enrolled as/);
    const device = (await admin.get(`/v1/devices/${deviceId}`)).body;
    expect(device).toMatchObject({ hostname: 'REF-1', loggedOnUser: 'carol', enrolled: true, agentVersion: '1.4.0' });

    const first = await request(deviceId);
    await sessionReaches(alice, first, ['active']);
    expect(await lastEvent(first)).toMatchObject({
      state: 'active',
      data: expect.objectContaining({ consent: 'granted', answeredBy: 'carol', consentRule: 'prompt_user' }),
    });
    expect(agent.output).toMatch(/applied settings/);
    expect((await alice.post(`/v1/sessions/${first}/cancel`)).body.state).toBe('ended');
    await agent.waitFor(`session ended: ${first}`);

    // Restart: the credential and the applied settings come from disk.
    expect(await agent.stop('SIGTERM')).toBe(0);
    const again = await startAgent('REF-1', ['--consent', 'accept', '--user', 'carol'], { stateDir });
    expect(again.deviceId).toBe(deviceId);
    expect(again.agent.output).not.toMatch(/agent enrolled as/);
    const second = await request(deviceId);
    await sessionReaches(alice, second, ['active']);
    const timeline = (await alice.get(`/v1/sessions/${second}`)).body.timeline;
    expect(timeline.find((e: { state: string }) => e.state === 'awaiting_consent').data.settings).toBe('already_current');
    expect(again.agent.output).not.toMatch(/applied settings/);
    await alice.post(`/v1/sessions/${second}/cancel`);
  });

  it('records a user who says no, and a prompt nobody answers', async () => {
    const deny = await startAgent('REF-DENY', ['--consent', 'deny', '--user', 'dave']);
    const denied = await request(deny.deviceId);
    await sessionReaches(alice, denied, ['denied']);
    expect(await lastEvent(denied)).toMatchObject({ data: expect.objectContaining({ answeredBy: 'dave' }) });

    const silent = await startAgent('REF-SILENT', ['--consent', 'none', '--user', 'erin']);
    const unanswered = await request(silent.deviceId);
    await sessionReaches(alice, unanswered, ['consent_timeout']);
  });

  it('starts on an unattended computer only where policy allows it, and only with a reason', async () => {
    const allowed = await startAgent('REF-UNATTENDED', ['--no-user']);
    const noReason = await request(allowed.deviceId);
    await sessionReaches(alice, noReason, ['rejected']);
    expect(
      (await alice.get(`/v1/sessions/${noReason}/decision`)).body.checks.find((c: { id: string }) => c.id === 'unattended_justification')
        .passed,
    ).toBe(false);
    const withReason = await request(allowed.deviceId, { reason: 'overnight patching' });
    await sessionReaches(alice, withReason, ['active']);
    expect(await lastEvent(withReason)).toMatchObject({
      data: expect.objectContaining({ consentRule: 'unattended_allowed', consent: 'not_required' }),
    });
    await alice.post(`/v1/sessions/${withReason}/cancel`);

    const kiosk = await startAgent('REF-KIOSK', ['--no-user'], { collection: world.ids.kiosks });
    const refused = await request(kiosk.deviceId, { reason: 'check' });
    await sessionReaches(alice, refused, ['rejected']);
    const presence = (await alice.get(`/v1/sessions/${refused}/decision`)).body.checks.find(
      (c: { id: string }) => c.id === 'user_presence',
    );
    expect(presence).toMatchObject({ passed: false, detail: expect.stringMatching(/unattended computer is not allowed/) });
  });

  it('marks a session interrupted when its agent dies, and the user can end one at the device', async () => {
    const doomed = await startAgent('REF-DOOMED', ['--consent', 'accept', '--user', 'frank']);
    const lost = await request(doomed.deviceId);
    await sessionReaches(alice, lost, ['active']);
    await doomed.agent.stop('SIGKILL');
    await sessionReaches(alice, lost, ['interrupted'], 30_000);

    const user = await startAgent('REF-USER', ['--consent', 'accept', '--user', 'gina']);
    const ended = await request(user.deviceId);
    await sessionReaches(alice, ended, ['active']);
    user.agent.proc.kill('SIGUSR2'); // the reference agent's "the user ends all sessions"
    await sessionReaches(alice, ended, ['ended']);
    expect(await lastEvent(ended)).toMatchObject({
      actor: { kind: 'agent', id: user.deviceId },
      data: expect.objectContaining({ by: 'user' }),
    });
  });

  it('refuses a revoked credential: the agent stops with a clear message', async () => {
    const { agent, deviceId, stateDir } = await startAgent('REF-REVOKED', ['--consent', 'accept', '--user', 'hank']);
    await agent.stop('SIGTERM');
    await admin.post(`/v1/devices/${deviceId}/credentials/revoke`);
    const refused = RcflowProcess.start('agent', {}, ['--server', agentApi.base, '--state-dir', stateDir]);
    agents.push(refused);
    expect(await refused.exited).toBe(2);
    expect(refused.output).toMatch(/refused|revoked/i);
  });

  it('keeps the audit trail verifiable', async () => {
    const r = await admin.get('/v1/audit/verify');
    expect(r.body).toMatchObject({ ok: true, problems: [] });
  });
});
