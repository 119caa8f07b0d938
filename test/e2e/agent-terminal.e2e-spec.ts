import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Api } from '../support/http';
import { RcflowProcess } from '../support/processes';
import { OperatorWorld, Stack, seedOperatorWorld, sessionReaches, startStack } from '../support/stack';

jest.setTimeout(120_000);

/** Ctrl-C must stop the agent on the first press; the bound is generous, the old agent never exited at all. */
const EXIT_DEADLINE_MS = 10_000;

/**
 * The reference agent at a real terminal: run on a pseudo-terminal (util-linux `script`), so
 * readline reads the keyboard raw as it does for a person, and typed at through it. A `y` typed at
 * the consent prompt must reach rcflow as the user's answer, and the first Ctrl-C must stop the
 * agent, answering an open prompt no and ending the active session with a reason.
 */
describe('reference agent at a terminal', () => {
  let stack: Stack;
  let world: OperatorWorld;
  let admin: Api;
  let alice: Api;
  const agents: RcflowProcess[] = [];

  beforeAll(async () => {
    stack = await startStack('agentterm', {
      AGENT_TRANSPORT: 'websocket',
      AGENT_HEARTBEAT_SECONDS: '1',
      SETTINGS_ACK_TIMEOUT_MS: '5000',
      // Long enough that a prompt can only end by the answer typed, never by the clock.
      CONSENT_TIMEOUT_MS: '60000',
    });
    admin = stack.admin;
    world = await seedOperatorWorld(admin);
    alice = admin.as(world.keys.alice);
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop('SIGKILL')));
    await stack?.stop();
  });

  const startAgent = async (hostname: string) => {
    const stateDir = mkdtempSync(join(tmpdir(), `rcflow-agent-${hostname}-`));
    const token = (await admin.post('/v1/enrolment-tokens', { hostname })).body.token as string;
    const agent = RcflowProcess.startInTerminal('agent', {}, [
      '--server',
      stack.apis[0].api.base,
      '--state-dir',
      stateDir,
      '--hostname',
      hostname,
      '--os-family',
      'windows',
      '--consent',
      'prompt',
      '--user',
      'carol',
      '--enrol',
      token,
    ]);
    agents.push(agent);
    await agent.waitFor('agent connected as');
    const deviceId = /agent connected as ([0-9a-f-]{36})/.exec(agent.output)![1];
    expect((await admin.put(`/v1/collections/${world.ids.desks}/members/${deviceId}`)).status).toBe(200);
    return { agent, deviceId };
  };
  const request = async (deviceId: string) => {
    const r = await alice.post('/v1/sessions', { deviceId, type: 'remote-control', access: 'full' });
    expect(r.status).toBe(202);
    return r.body.id as string;
  };
  const timeline = async (id: string) => (await alice.get(`/v1/sessions/${id}`)).body.timeline as Record<string, unknown>[];
  /** The agent's exit code, or a failure naming what it printed if it is still running at the deadline. */
  const exitOf = async (agent: RcflowProcess) => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the agent was still running ${EXIT_DEADLINE_MS} ms after Ctrl-C:\n${agent.output}`)),
        EXIT_DEADLINE_MS,
      );
    });
    try {
      return await Promise.race([agent.exited, deadline]);
    } finally {
      clearTimeout(timer);
    }
  };

  it('records a y typed at the prompt as the answer, and the first Ctrl-C ends the session with a reason and exits 0', async () => {
    const { agent, deviceId } = await startAgent('TTY-1');
    const id = await request(deviceId);
    await agent.waitFor('Allow? [y/N]');
    agent.press('y\r');
    await sessionReaches(alice, id, ['active']);
    expect((await timeline(id)).at(-1)).toMatchObject({
      state: 'active',
      data: expect.objectContaining({ consent: 'granted', answeredBy: 'carol' }),
    });
    expect((await timeline(id)).some((e) => e.state === 'consent_timeout')).toBe(false);

    agent.press('\x03');
    expect(await exitOf(agent)).toBe(0);
    await sessionReaches(alice, id, ['ended']);
    expect((await timeline(id)).at(-1)).toMatchObject({
      state: 'ended',
      reason: 'agent stopped (Ctrl-C)',
      actor: { kind: 'agent', id: deviceId },
      data: expect.objectContaining({ by: 'agent' }),
    });
    expect(agent.output).toMatch(/session ended: [0-9a-f-]{36} by the agent \(agent stopped \(Ctrl-C\)\)/);
    expect(agent.output).toMatch(/agent stopped/);
  });

  it('answers a prompt still open at Ctrl-C no, in the name of the user at the terminal, instead of leaving it to time out', async () => {
    const { agent, deviceId } = await startAgent('TTY-2');
    const id = await request(deviceId);
    await agent.waitFor('Allow? [y/N]');
    agent.press('\x03');
    expect(await exitOf(agent)).toBe(0);
    await sessionReaches(alice, id, ['denied']);
    expect((await timeline(id)).at(-1)).toMatchObject({ state: 'denied', data: expect.objectContaining({ answeredBy: 'carol' }) });
    expect(agent.output).toContain('(agent stopped (Ctrl-C): answered no)');
  });

  it('keeps the audit trail verifiable', async () => {
    expect((await admin.get('/v1/audit/verify')).body).toMatchObject({ ok: true, problems: [] });
  });
});
