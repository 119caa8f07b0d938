import { Api } from '../support/http';
import { RcflowProcess } from '../support/processes';
import { allAtRest, expectInvariants } from '../support/invariants';
import { OperatorWorld, Stack, seedOperatorWorld, startStack } from '../support/stack';

jest.setTimeout(180_000);

/**
 * The simulator's misbehaving agents against the real processes: duplicate acknowledgements,
 * acknowledgements after the timeout, connections dropped mid-command, users who say yes, no or
 * nothing. Whatever they do, each session ends once and the audit chain holds.
 */
describe('a simulated fleet that misbehaves', () => {
  let stack: Stack;
  let world: OperatorWorld;
  let alice: Api;
  let simulator: RcflowProcess;
  const COUNT = 60;

  beforeAll(async () => {
    stack = await startStack(
      'fleet',
      {
        AGENT_TRANSPORT: 'websocket',
        SETTINGS_ACK_TIMEOUT_MS: '1500',
        CONSENT_TIMEOUT_MS: '1500',
        JOB_ATTEMPTS: '2',
        JOB_BACKOFF_MS: '200',
        RATE_LIMIT_PER_MINUTE: '100000',
      },
      2,
    );
    world = await seedOperatorWorld(stack.admin, { permissionRequired: true });
    alice = stack.admin.as(world.keys.alice);
    const token = (await stack.admin.post('/v1/enrolment-tokens', { maxUses: COUNT })).body.token;
    simulator = RcflowProcess.start('simulator', {}, [
      '--server',
      stack.apis[1].api.base,
      '--enrol',
      token,
      '--count',
      String(COUNT),
      '--prefix',
      'FLEET',
      '--consent-accept',
      '0.6',
      '--consent-deny',
      '0.2',
      '--consent-timeout',
      '0.2',
      '--seed',
      '7',
      '--latency-ms',
      '0-100',
      '--duplicate-ack-rate',
      '0.3',
      '--late-ack-rate',
      '0.1',
      '--late-ack-ms',
      '500',
      '--dropout-rate',
      '0.1',
    ]);
    await simulator.waitFor(`simulator ready: ${COUNT} agents connected`, 60_000);
  });
  afterAll(async () => {
    await simulator?.stop('SIGKILL');
    await stack?.stop();
  });

  it('ends every session exactly once, whatever the agents do', async () => {
    const devices = (await stack.admin.get('/v1/devices?hostname=FLEET&limit=500')).body.items as { id: string }[];
    expect(devices).toHaveLength(COUNT);
    for (const d of devices) await stack.admin.put(`/v1/collections/${world.ids.desks}/members/${d.id}`);
    const ids: string[] = [];
    for (const d of devices) {
      const r = await alice.post('/v1/sessions', { deviceId: d.id, type: 'remote-control', access: 'full' });
      expect(r.status).toBe(202);
      ids.push(r.body.id);
    }
    await allAtRest(stack.ds, ids, 120_000);
    const states: { state: string; n: number }[] = await stack.ds.query(
      'SELECT state, count(*)::int AS n FROM sessions WHERE id = ANY($1) GROUP BY state ORDER BY state',
      [ids],
    );
    const by = Object.fromEntries(states.map((s) => [s.state, s.n]));
    // Users said yes, no and nothing; late or lost answers fail a few with agent_timeout.
    expect(by.active).toBeGreaterThan(0);
    expect((by.denied ?? 0) + (by.consent_timeout ?? 0)).toBeGreaterThan(0);
    expect(Object.keys(by).every((s) => ['active', 'denied', 'consent_timeout', 'failed'].includes(s))).toBe(true);
    await expectInvariants(stack.ds, ids);
  });
});
