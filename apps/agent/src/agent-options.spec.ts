import * as path from 'node:path';
import { parseAgentArgs, type AgentOptions } from './agent-options';
import { UsageError } from './cli-args';
import { parseSimulatorArgs } from './simulator-options';

const TOKEN = 'rce_0d6f4a7e-9a43-4a8e-9d7b-3e0c0f1b2a3c.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const machine = { hostname: () => 'ws-0001.corp.example', homedir: () => '/home/test' };
const parse = (argv: string[], env: NodeJS.ProcessEnv = {}): AgentOptions => {
  const r = parseAgentArgs(argv, env, machine);
  if (r.help) throw new Error('unexpected help');
  return r.options;
};
const usageError = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
  try {
    parseAgentArgs(argv, env, machine);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error('expected a usage error');
};

describe('parseAgentArgs', () => {
  it('fills defaults from the machine', () => {
    expect(parse(['--server', 'http://127.0.0.1:3000/', '--enrol', TOKEN])).toEqual({
      server: 'http://127.0.0.1:3000',
      enrolToken: TOKEN,
      stateDir: path.resolve('/home/test/.rcflow-agent'),
      hostname: 'ws-0001',
      hostnameFromFlag: false,
      consent: 'prompt',
      user: undefined,
      locked: false,
      osFamily: undefined,
      osBuild: undefined,
      agentVersion: '1.0.0',
      domain: null,
      fqdn: null,
      localAdministrators: [],
      rejectSettings: false,
      preapproval: 'ask',
      preapprovalFromFlag: false,
      viewerHost: 'ws-0001',
      viewerPort: 5938,
    });
  });

  it('takes every flag', () => {
    const o = parse([
      '--server',
      'https://rcflow.example/api',
      '--state-dir',
      '/tmp/s',
      '--hostname',
      'PC-7',
      '--consent',
      'deny',
      '--user',
      'alice',
      '--locked',
      '--os-family',
      'windows',
      '--os-build',
      '10.0.22631',
      '--agent-version',
      '2.1.0',
      '--domain',
      'corp.example',
      '--local-admin',
      'CORP\\admins',
      '--local-admin',
      'bob',
      '--reject-settings',
      '--viewer-host',
      '10.1.2.3',
      '--viewer-port',
      '6000',
    ]);
    expect(o).toMatchObject({
      server: 'https://rcflow.example/api',
      enrolToken: null,
      stateDir: '/tmp/s',
      hostname: 'PC-7',
      hostnameFromFlag: true,
      consent: 'deny',
      user: 'alice',
      locked: true,
      osFamily: 'windows',
      osBuild: '10.0.22631',
      agentVersion: '2.1.0',
      domain: 'corp.example',
      fqdn: 'PC-7.corp.example',
      localAdministrators: ['CORP\\admins', 'bob'],
      rejectSettings: true,
      viewerHost: '10.1.2.3',
      viewerPort: 6000,
    });
  });

  it('reads the state directory and token from the environment', () => {
    const o = parse(['--server', 'http://h:1'], { RCFLOW_AGENT_STATE: '/var/lib/rcflow', RCFLOW_AGENT_ENROL: TOKEN });
    expect(o.stateDir).toBe('/var/lib/rcflow');
    expect(o.enrolToken).toBe(TOKEN);
  });

  it('maps --no-user to nobody', () => {
    expect(parse(['--server', 'http://h:1', '--no-user']).user).toBeNull();
  });

  it('returns help', () => {
    expect(parseAgentArgs(['--help'], {}, machine)).toEqual({ help: true });
    expect(parseAgentArgs(['-h'], {}, machine)).toEqual({ help: true });
  });

  it.each([
    [[], /--server is required/],
    [['--server', 'ftp://x'], /http or https URL/],
    [['--server', 'not a url'], /http or https URL/],
    [['--server', 'http://h:1', '--bogus'], /Unknown option '--bogus'/],
    [['--server', 'http://h:1', 'extra'], /positional/i],
    [['--server', 'http://h:1', '--enrol'], /argument missing/],
    [['--server', 'http://h:1', '--consent', 'maybe'], /--consent must be one of prompt, accept, deny, none/],
    [['--server', 'http://h:1', '--user', 'a', '--no-user'], /cannot be combined/],
    [['--server', 'http://h:1', '--os-family', 'beos'], /--os-family must be one of/],
    [['--server', 'http://h:1', '--agent-version', 'latest'], /--agent-version must be a dotted version/],
    [['--server', 'http://h:1', '--viewer-port', '70000'], /--viewer-port must be an integer from 1 to 65535/],
    [['--server', 'http://h:1', '--viewer-port', 'x'], /--viewer-port/],
    [['--server', 'http://h:1', '--hostname', 'bad.name'], /--hostname must be/],
  ])('refuses %j', (argv, message) => {
    expect(usageError(argv)).toMatch(message);
  });

  it('refuses a malformed enrolment token without echoing it', () => {
    const message = usageError(['--server', 'http://h:1', '--enrol', 'rcd_secret-value']);
    expect(message).toMatch(/--enrol must be an enrolment token/);
    expect(message).not.toContain('secret-value');
  });

  it('asks for --hostname when the machine name cannot be enrolled', () => {
    expect(() => parseAgentArgs(['--server', 'http://h:1'], {}, { ...machine, hostname: () => 'böse' })).toThrow(/pass --hostname/);
  });
});

describe('parseSimulatorArgs', () => {
  const sim = (argv: string[]) => {
    const r = parseSimulatorArgs(argv, {});
    if (r.help) throw new Error('unexpected help');
    return r.options;
  };

  it('fills defaults', () => {
    expect(sim(['--server', 'http://h:1', '--enrol', TOKEN, '--count', '3'])).toMatchObject({
      count: 3,
      prefix: 'SIM',
      firstIndex: 1,
      consent: { accept: 0.8, deny: 0.1, timeout: 0.1 },
      latencyMs: { min: 0, max: 0 },
      dropoutRate: 0,
      duplicateAckRate: 0,
      lateAckRate: 0,
      stateFile: null,
      concurrency: 50,
      seed: '1',
      statusSeconds: 5,
    });
  });

  it('parses ranges and rates', () => {
    const o = sim([
      '--server',
      'http://h:1',
      '--count',
      '2',
      '--latency-ms',
      '5-50',
      '--dropout-rate',
      '0.2',
      '--state-file',
      'x.json',
      '--seed',
      'abc',
    ]);
    expect(o.latencyMs).toEqual({ min: 5, max: 50 });
    expect(o.dropoutRate).toBe(0.2);
    expect(o.stateFile).toBe(path.resolve('x.json'));
    expect(sim(['--server', 'http://h:1', '--count', '2', '--latency-ms', '20']).latencyMs).toEqual({ min: 20, max: 20 });
  });

  it.each([
    [['--server', 'http://h:1'], /--count is required/],
    [['--server', 'http://h:1', '--count', '0'], /--count must be an integer/],
    [['--server', 'http://h:1', '--count', '2', '--latency-ms', '50-5'], /--latency-ms/],
    [['--server', 'http://h:1', '--count', '2', '--dropout-rate', '2'], /--dropout-rate must be a number from 0 to 1/],
    [['--server', 'http://h:1', '--count', '2', '--prefix', 'a.b'], /--prefix/],
    [
      ['--server', 'http://h:1', '--count', '2', '--consent-accept', '0', '--consent-deny', '0', '--consent-timeout', '0'],
      /must not all be 0/,
    ],
  ])('refuses %j', (argv, message) => {
    expect(() => parseSimulatorArgs(argv, {})).toThrow(message);
  });
});

describe('parseAgentArgs --preapproval', () => {
  const base = ['--server', 'http://127.0.0.1:3000', '--state-dir', '/tmp/s', '--hostname', 'PC-7'];
  it('takes ask, grant or deny, and refuses anything else', () => {
    const parsed = parseAgentArgs([...base, '--preapproval', 'grant'], {}, { hostname: () => 'x', homedir: () => '/home/x' });
    expect(parsed).toMatchObject({ help: false, options: { preapproval: 'grant', preapprovalFromFlag: true } });
    expect(() => parseAgentArgs([...base, '--preapproval', 'always'], {}, { hostname: () => 'x', homedir: () => '/home/x' })).toThrow(
      /--preapproval must be one of ask, grant, deny; got "always"/,
    );
  });
});
