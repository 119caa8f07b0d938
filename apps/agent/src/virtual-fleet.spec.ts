import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { memoryLogger } from './logger';
import { seededDraw } from './seeded-random';
import { parseSimulatorArgs, type SimulatorOptions } from './simulator-options';
import { applySettings, startSession } from './testing/fixtures';
import { FakeRcflowServer } from './testing/fake-rcflow-server';
import { VirtualFleet } from './virtual-fleet';

describe('VirtualFleet', () => {
  let server: FakeRcflowServer;
  let dir: string;
  let fleets: VirtualFleet[];
  beforeEach(async () => {
    server = new FakeRcflowServer();
    await server.start();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcflow-sim-'));
    fleets = [];
  });
  afterEach(async () => {
    for (const f of fleets) await f.stop();
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function options(token: string | null, extra: string[] = []): SimulatorOptions {
    const argv = ['--server', server.url, '--count', '3', '--state-file', path.join(dir, 'sim.json'), ...extra];
    const r = parseSimulatorArgs(token ? [...argv, '--enrol', token] : argv, {});
    if (r.help) throw new Error('help');
    return r.options;
  }

  async function run(o: SimulatorOptions) {
    const log = memoryLogger();
    const fleet = new VirtualFleet(o, log);
    fleets.push(fleet);
    fleet.loadState();
    await fleet.enrolMissing();
    fleet.start();
    await server
      .waitFor(() => log.lines.some((l) => l.startsWith('simulator ready')), 3000, 'ready')
      .catch((e: unknown) => {
        throw new Error(`${(e as Error).message}; log:\n${log.lines.join('\n')}`);
      });
    return { fleet, log };
  }

  const deviceIds = () => [...server.devices.values()].map((d) => d.deviceId);

  it('enrols N hosts with one token, connects them all and reuses the credentials after a restart', async () => {
    const token = server.newToken(3);
    const first = await run(options(token));
    expect(first.log.lines).toContain('simulator ready: 3 agents connected');
    expect([...server.devices.values()].map((d) => d.hostname).sort()).toEqual(['SIM-1', 'SIM-2', 'SIM-3']);
    const file = path.join(dir, 'sim.json');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(Object.keys((JSON.parse(fs.readFileSync(file, 'utf8')) as { agents: object }).agents).sort()).toEqual([
      'SIM-1',
      'SIM-2',
      'SIM-3',
    ]);
    expect(first.fleet.statusLine()).toMatch(/^simulator status: connected 3\/3, commands 0, answers 0/);
    await first.fleet.stop();

    // The token is used up: a restart must get by on the stored credentials.
    const second = await run(options(null));
    expect(second.log.lines).toContain('reusing 3 stored credential(s)');
    expect(server.devices.size).toBe(3);
  });

  it('answers commands once per command id, with drawn consent, duplicates and latency', async () => {
    const { fleet } = await run(
      options(server.newToken(3), [
        '--duplicate-ack-rate',
        '1',
        '--latency-ms',
        '5-20',
        '--consent-accept',
        '1',
        '--consent-deny',
        '0',
        '--consent-timeout',
        '0',
      ]),
    );
    const [a, b] = deviceIds();
    server.send(a, applySettings('cmd-1'));
    const start = startSession({ commandId: 'cmd-2' });
    server.send(b, start);
    await server.waitFor(() => server.framesOf(b, 'session_started').length === 2, 5000, 'answers');
    await server.waitFor(() => server.framesOf(a, 'settings_applied').length === 2, 5000, 'answers');
    // Duplicated, and consent still ahead of session_started.
    expect(
      server
        .framesOf(b)
        .filter((f) => f.type !== 'hello')
        .map((f) => f.type),
    ).toEqual(['consent', 'consent', 'session_started', 'session_started']);
    expect(server.framesOf(b, 'consent')[0]).toMatchObject({ outcome: 'granted', answeredBy: 'user2' });
    expect(fleet.counters).toMatchObject({ commands: 2, answers: 3, duplicates: 3 });
  });

  it('holds answers back past the timeout when told to be late', async () => {
    const { fleet } = await run(options(server.newToken(3), ['--late-ack-rate', '1', '--late-ack-ms', '300']));
    const [a] = deviceIds();
    server.send(a, applySettings('cmd-late'));
    await new Promise((r) => setTimeout(r, 150));
    expect(server.framesOf(a, 'settings_applied')).toHaveLength(0);
    await server.waitFor(() => server.framesOf(a, 'settings_applied').length === 1, 2000, 'late answer');
    expect(fleet.counters.late).toBe(1);
  });

  it('drops the connection on a command, then reconnects and answers', async () => {
    const { fleet } = await run(options(server.newToken(3), ['--dropout-rate', '1']));
    const [a] = deviceIds();
    const before = server.connections;
    server.send(a, applySettings('cmd-drop'));
    await server.waitFor(() => server.framesOf(a, 'settings_applied').length === 1, 5000, 'answer after reconnect');
    expect(server.connections).toBe(before + 1);
    expect(fleet.counters.dropouts).toBe(1);
    expect(server.framesOf(a, 'hello')).toHaveLength(2);
  });

  it('draws the same consent outcomes for the same seed', async () => {
    const shares = ['--consent-accept', '0.5', '--consent-deny', '0.5', '--consent-timeout', '0'];
    await run(options(server.newToken(3), shares));
    const ids = deviceIds();
    const sessions = ids.map(() => randomUUID());
    const outcomes = async () => {
      ids.forEach((id, i) => server.send(id, startSession({ commandId: `cmd-seed-${i}`, sessionId: sessions[i] })));
      await server.waitFor(() => ids.every((id) => server.framesOf(id, 'consent').length > 0), 5000, 'consent');
      return ids.map((id) => (server.framesOf(id, 'consent')[0] as { outcome: string }).outcome);
    };
    const got = await outcomes();
    expect(got).toEqual(
      ['SIM-1', 'SIM-2', 'SIM-3'].map((h, i) => (seededDraw('1', 'consent', h, `cmd-seed-${i}`) < 0.5 ? 'granted' : 'denied')),
    );
  });

  it('carries on when some hosts cannot enrol', async () => {
    const o = options(server.newToken(2));
    const log = memoryLogger();
    const fleet = new VirtualFleet(o, log);
    fleets.push(fleet);
    await fleet.enrolMissing();
    expect(fleet.counters).toMatchObject({ enrolled: 2, enrolFailed: 1 });
    expect(log.lines.join('\n')).toMatch(/enrolment refused with HTTP 401/);
    fleet.start();
    await server.waitFor(() => log.lines.some((l) => l === 'simulator ready: 2 agents connected'), 5000, 'ready');
  });
});
