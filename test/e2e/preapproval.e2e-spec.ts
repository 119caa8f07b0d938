import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Api } from '../support/http';
import { RcflowProcess, waitUntil } from '../support/processes';
import { RawAgent, presence } from '../support/raw-agent';
import { OperatorWorld, Stack, seedOperatorWorld, sessionReaches, startStack } from '../support/stack';

jest.setTimeout(120_000);

type Json = Record<string, any>;

/**
 * Telling the user ahead, end to end: real API processes, the worker and the reference agent. A
 * booking with a reminder and an ask for pre-approval reaches the agent; the user's answer (given
 * by the agent, or taken back at its console) decides whether the due session starts without a
 * prompt.
 */
describe('reminders and pre-approval end to end', () => {
  let stack: Stack;
  let starting: Promise<Stack> | undefined;
  let world: OperatorWorld;
  let admin: Api;
  let alice: Api;
  let agentApi: Api;
  const agents: RcflowProcess[] = [];

  beforeAll(async () => {
    stack = await (starting = startStack(
      'preapproval',
      {
        AGENT_TRANSPORT: 'websocket',
        AGENT_HEARTBEAT_SECONDS: '1',
        PRESENCE_GRACE_SECONDS: '5',
        SETTINGS_ACK_TIMEOUT_MS: '5000',
        CONSENT_TIMEOUT_MS: '5000',
      },
      2,
    ));
    admin = stack.admin;
    agentApi = stack.apis[1].api;
    // Attended devices whose settings prompt the user for permission.
    world = await seedOperatorWorld(admin, { permissionRequired: true });
    alice = admin.as(world.keys.alice);
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop('SIGKILL')));
    await (stack ?? (await starting?.catch(() => undefined)))?.stop();
  });

  const startAgent = async (hostname: string, flags: string[]) => {
    const stateDir = mkdtempSync(join(tmpdir(), `rcflow-agent-${hostname}-`));
    const token = (await admin.post('/v1/enrolment-tokens', { hostname })).body.token as string;
    const agent = RcflowProcess.start(
      'agent',
      {},
      [
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
        '--enrol',
        token,
        ...flags,
      ],
      { stdin: true },
    );
    agents.push(agent);
    await agent.waitFor('agent connected as');
    const deviceId = /agent connected as ([0-9a-f-]{36})/.exec(agent.output)![1];
    expect((await admin.put(`/v1/collections/${world.ids.desks}/members/${deviceId}`)).status).toBe(200);
    return { agent, deviceId };
  };
  /** A booking `inMs` ahead that reminds the user now (a minute ahead of a start closer than that) and asks for pre-approval. */
  const book = async (deviceId: string, inMs: number) => {
    const notBefore = new Date(Date.now() + inMs).toISOString();
    const r = await alice.post('/v1/sessions', {
      deviceId,
      type: 'remote-control',
      access: 'full',
      reason: 'printer',
      notBefore,
      remindMinutes: 1,
      askApproval: true,
    });
    expect(r.status).toBe(202);
    expect(r.body.state).toBe('scheduled');
    return { id: r.body.id as string, notBefore };
  };
  const noticeOf = async (id: string) => (await alice.get(`/v1/sessions/${id}`)).body.notice as Json | null;
  const approvalReaches = (id: string, approval: string) =>
    waitUntil(async () => ((await noticeOf(id))?.approval === approval ? noticeOf(id) : null), 30_000, `notice of ${id} ${approval}`);
  const lastEvent = async (id: string) => (await alice.get(`/v1/sessions/${id}`)).body.timeline.at(-1) as Json;
  const noticeEvents = async (noticeId: string) =>
    (
      await stack.ds.query(`SELECT action, device_id, session_id FROM audit_events WHERE stream = $1 ORDER BY seq`, [`notice:${noticeId}`])
    ).map((e: Json) => e.action as string);

  it('refuses a reminder without a booking, naming the field', async () => {
    const r = await alice.post('/v1/sessions', {
      deviceId: '00000000-0000-4000-8000-000000000000',
      type: 'remote-control',
      access: 'full',
      remindMinutes: 5,
    });
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body)).toMatch(/remindMinutes/);
  });

  it('a pre-approval given through the agent: the due session goes active with no prompt, and says so', async () => {
    // The agent would deny any prompt: only the pre-approval can start this session.
    const { agent, deviceId } = await startAgent('PRE-1', ['--consent', 'deny', '--preapproval', 'grant', '--user', 'carol']);
    const { id, notBefore } = await book(deviceId, 12_000);
    await agent.waitFor(/reminder: alice will remote-control this computer \(full control\)/);
    await agent.waitFor('pre-approval asked: notice');
    const notice = await approvalReaches(id, 'granted');
    expect(notice).toMatchObject({
      remindMinutes: 1,
      askApproval: true,
      state: 'delivered',
      approval: 'granted',
      answeredBy: 'carol',
      windowStart: notBefore,
    });
    expect(await sessionReaches(alice, id, ['active', 'denied', 'consent_timeout', 'failed', 'rejected', 'expired'], 60_000)).toBe(
      'active',
    );
    expect(await lastEvent(id)).toMatchObject({
      state: 'active',
      data: { consentRule: 'prompt_user', consent: 'pre_approved', consentBy: 'pre_approval', noticeId: notice.id, answeredBy: 'carol' },
    });
    expect(agent.output).toContain(`consent pre-approved: session ${id} on notice ${notice.id}`);
    expect(agent.output).not.toContain(`of session ${id}`); // the "consent asked: … of session <id>" prompt line
    expect((await noticeEvents(notice.id)).sort()).toEqual(['session.notice_delivered', 'session.preapproval_granted']);
    await alice.post(`/v1/sessions/${id}/cancel`);

    // Another device's agent cannot answer this notice; a malformed answer is refused too. Nothing changes.
    const token = (await admin.post('/v1/enrolment-tokens', { hostname: 'PRE-RAW' })).body.token as string;
    const enrolled = await agentApi.post('/v1/agent/enrol', { token, hostname: 'PRE-RAW', presence: presence() });
    expect(enrolled.status).toBe(201);
    const raw = await RawAgent.connect(agentApi.base, enrolled.body.credential);
    try {
      await raw.hello();
      const from = raw.received.length;
      raw.send({ v: 1, type: 'preapproval', noticeId: notice.id, decision: 'revoked', answeredBy: 'mallory' });
      expect(await raw.next('error', 15_000, from)).toMatchObject({
        code: 'unexpected',
        message: expect.stringMatching(/no such notice for this device/),
      });
      const later = raw.received.length;
      raw.send({ v: 1, type: 'preapproval', noticeId: notice.id, decision: 'maybe', answeredBy: 'mallory' });
      expect(await raw.next('error', 15_000, later)).toMatchObject({ code: 'bad_frame', message: expect.stringMatching(/decision/) });
    } finally {
      raw.close();
    }
    expect(await noticeOf(id)).toMatchObject({ approval: 'granted', answeredBy: 'carol' });
    expect((await noticeEvents(notice.id)).sort()).toEqual(['session.notice_delivered', 'session.preapproval_granted']);
  });

  it('a pre-approval revoked at the agent before due: the user is prompted (and says yes)', async () => {
    const { agent, deviceId } = await startAgent('PRE-2', ['--consent', 'accept', '--preapproval', 'grant', '--user', 'dave']);
    const { id } = await book(deviceId, 12_000);
    const granted = await approvalReaches(id, 'granted');
    agent.type('revoke');
    await agent.waitFor(`pre-approval revoked: notice ${granted.id} by dave`);
    expect(await approvalReaches(id, 'revoked')).toMatchObject({ approval: 'revoked', answeredBy: 'dave' });
    expect(await sessionReaches(alice, id, ['active', 'denied', 'consent_timeout', 'failed', 'rejected', 'expired'], 60_000)).toBe(
      'active',
    );
    expect(await lastEvent(id)).toMatchObject({
      state: 'active',
      data: { consentRule: 'prompt_user', consent: 'granted', consentBy: 'prompt', answeredBy: 'dave' },
    });
    // The server knew of the revoke, so it did not even offer the pre-approval.
    expect((await lastEvent(id)).data).not.toHaveProperty('preApprovalNotHeldByAgent');
    expect(agent.output).toContain(`consent asked: alice wants remote-control (full) of session ${id}`);
    expect(await noticeEvents(granted.id)).toEqual(
      expect.arrayContaining(['session.notice_delivered', 'session.preapproval_granted', 'session.preapproval_revoked']),
    );
    await alice.post(`/v1/sessions/${id}/cancel`);
  });

  it('keeps the audit trail verifiable', async () => {
    expect((await admin.get('/v1/audit/verify')).body).toMatchObject({ ok: true, problems: [] });
  });
});
