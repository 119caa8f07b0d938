import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { AGENT_WS_PATH, formatCredential, parseAgentMessage } from '@rcflow/agent-protocol';
import { AgentClient } from './agent-client';
import { Backoff } from './backoff';
import { PolicyConsentProvider } from './consent-providers';
import { DeviceAgent } from './device-agent';
import { memoryLogger } from './logger';
import type { Outbound } from './protocol-types';
import { MemoryStateStore } from './state-store';
import { applySettings, FACTS, SETTINGS_HASH, startSession } from './testing/fixtures';

const CREDENTIAL = formatCredential('rcd', randomUUID(), 'b'.repeat(43));
const DEVICE_ID = randomUUID();

async function waitUntil(predicate: () => boolean, what: string, timeoutMs = 5000) {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A tiny stand-in for the API's agent socket: checks the credential, welcomes on hello, records frames. */
class TinyServer {
  readonly wss: WebSocketServer;
  readonly frames: Outbound[] = [];
  readonly invalid: string[] = [];
  sockets: WebSocket[] = [];
  authorizations: (string | undefined)[] = [];
  refuseWith: number | null = null;
  heartbeatSeconds = 30;

  constructor() {
    this.wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      path: AGENT_WS_PATH,
      verifyClient: (info, done) => {
        this.authorizations.push(info.req.headers.authorization);
        if (this.refuseWith) return done(false, this.refuseWith);
        done(info.req.headers.authorization === `Bearer ${CREDENTIAL}`, 401);
      },
    });
    this.wss.on('connection', (ws) => {
      this.sockets.push(ws);
      ws.on('message', (data: Buffer) => {
        const r = parseAgentMessage(data);
        if (!r.ok) return void this.invalid.push(data.toString());
        const frame = r.message as unknown as Outbound;
        this.frames.push(frame);
        if (frame.type === 'hello')
          ws.send(JSON.stringify({ v: 1, type: 'welcome', deviceId: DEVICE_ID, heartbeatSeconds: this.heartbeatSeconds }));
      });
    });
  }

  ready() {
    return new Promise<void>((resolve) => (this.wss.address() ? resolve() : this.wss.once('listening', () => resolve())));
  }
  get url() {
    return `http://127.0.0.1:${(this.wss.address() as AddressInfo).port}`;
  }
  get current() {
    return this.sockets[this.sockets.length - 1];
  }
  send(frame: unknown) {
    this.current.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }
  count(type: Outbound['type']) {
    return this.frames.filter((f) => f.type === type).length;
  }
  close() {
    for (const ws of this.wss.clients) ws.terminate();
    return new Promise((r) => this.wss.close(r));
  }
}

describe('AgentClient', () => {
  let server: TinyServer;
  let client: AgentClient | null;
  beforeEach(async () => {
    server = new TinyServer();
    await server.ready();
    client = null;
  });
  afterEach(async () => {
    await client?.stop();
    await server.close();
  });

  function connect(extra: { credential?: string } = {}) {
    const log = memoryLogger();
    const store = new MemoryStateStore();
    const agent = new DeviceAgent({
      store,
      consent: new PolicyConsentProvider('accept'),
      facts: () => FACTS,
      viewerEndpoint: { host: 'pc-1', port: 5938 },
      log,
    });
    const events = { connected: 0, disconnected: 0, fatal: [] as string[] };
    client = new AgentClient({
      server: server.url,
      credential: extra.credential ?? CREDENTIAL,
      agent,
      log,
      backoff: { initialMs: 20, maxMs: 100 },
      onConnected: () => events.connected++,
      onDisconnected: () => events.disconnected++,
      onFatal: (m) => events.fatal.push(m),
    });
    client.start();
    return { log, store, agent, events, client };
  }

  it('says hello with presence, is welcomed, and answers a command', async () => {
    const { log, events } = connect();
    await waitUntil(() => events.connected === 1, 'welcome');
    expect(server.authorizations).toEqual([`Bearer ${CREDENTIAL}`]);
    expect(server.frames[0]).toEqual({ v: 1, type: 'hello', presence: { ...FACTS, appliedSettingsHash: null } });
    expect(log.lines).toContain(`agent connected as ${DEVICE_ID}`);
    expect(client!.connected).toBe(true);

    server.send(applySettings('cmd-1'));
    await waitUntil(() => server.count('settings_applied') === 1, 'settings_applied');
    expect(server.frames[1]).toEqual({ v: 1, type: 'settings_applied', commandId: 'cmd-1', versionHash: SETTINGS_HASH });
    // The credential never reaches the log.
    expect(log.lines.join('\n')).not.toContain(CREDENTIAL);
  });

  it('logs and ignores malformed frames, keeping the connection', async () => {
    const { log, events } = connect();
    await waitUntil(() => events.connected === 1, 'welcome');
    server.send('this is not json');
    server.send({ v: 1, type: 'start_session', commandId: 'x' });
    server.send({ v: 2, type: 'apply_settings' });
    server.send({ v: 1, type: 'error', code: 'bad_frame', message: 'your last frame was odd' });
    server.send(startSession({ commandId: 'cmd-after', rule: 'not_required' }));
    await waitUntil(() => server.count('session_started') === 1, 'session_started');
    expect(log.lines.filter((l) => l.includes('malformed frame'))).toHaveLength(2);
    expect(log.lines.filter((l) => l.includes('another protocol version'))).toHaveLength(1);
    expect(log.lines).toContain('warning: server reported an error (bad_frame): your last frame was odd');
    expect(server.sockets).toHaveLength(1);
    expect(events.disconnected).toBe(0);
    expect(server.invalid).toEqual([]);
  });

  it('reconnects after the server closes, sends what it queued meanwhile, and answers a redelivery the same way', async () => {
    const { events, agent, log } = connect();
    await waitUntil(() => events.connected === 1, 'welcome');
    server.send(startSession({ commandId: 'cmd-s', rule: 'not_required' }));
    await waitUntil(() => server.count('session_started') === 1, 'session_started');

    server.current.close(1012, 'restarting');
    await waitUntil(() => events.disconnected === 1, 'disconnect');
    // The user ends the session while the agent is offline; the frame waits for the next welcome.
    agent.endSessionsByUser();
    await waitUntil(() => events.connected === 2, 'reconnect');
    expect(server.count('hello')).toBe(2);
    await waitUntil(() => server.count('session_ended') === 1, 'queued session_ended');
    expect(server.frames.find((f) => f.type === 'session_ended')).toMatchObject({ by: 'user', commandId: null });
    expect(log.lines.some((l) => l.includes('disconnected (code 1012: restarting); reconnecting in'))).toBe(true);

    server.send(startSession({ commandId: 'cmd-s', rule: 'not_required' }));
    await waitUntil(() => server.count('session_started') === 2, 'repeated answer');
    const answers = server.frames.filter((f) => (f as { commandId?: string }).commandId === 'cmd-s');
    expect(answers.slice(2)).toEqual(answers.slice(0, 2));
  });

  it('keeps retrying while the server is away', async () => {
    const { events, log } = connect();
    await waitUntil(() => events.connected === 1, 'welcome');
    await server.close();
    await waitUntil(() => log.lines.filter((l) => l.includes('could not connect')).length >= 2, 'retries');
    expect(log.lines.find((l) => l.includes('could not connect'))).toMatch(/ECONNREFUSED .*; reconnecting in \d+\.\d s$/);
    expect(events.fatal).toEqual([]);
  });

  it('stops for good when the upgrade is refused with 401', async () => {
    const { events } = connect({ credential: formatCredential('rcd', randomUUID(), 'c'.repeat(43)) });
    await waitUntil(() => events.fatal.length === 1, 'fatal');
    expect(events.fatal[0]).toMatch(/refused the device credential \(HTTP 401/);
    await new Promise((r) => setTimeout(r, 150));
    expect(server.authorizations).toHaveLength(1);
  });

  it('keeps retrying when the upgrade fails with another status', async () => {
    server.refuseWith = 503;
    const { events, log } = connect();
    await waitUntil(() => server.authorizations.length >= 3, 'retries');
    expect(events.fatal).toEqual([]);
    expect(log.lines.some((l) => l.includes('HTTP 503'))).toBe(true);
  });

  it('stops for good on close code 4401', async () => {
    const { events } = connect();
    await waitUntil(() => events.connected === 1, 'welcome');
    server.current.close(4401, 'device revoked');
    await waitUntil(() => events.fatal.length === 1, 'fatal');
    expect(events.fatal[0]).toBe('the server refused the device credential (close code 4401: device revoked)');
    await new Promise((r) => setTimeout(r, 150));
    expect(server.sockets).toHaveLength(1);
  });

  it('sends heartbeats with fresh presence at the interval the welcome gives', async () => {
    server.heartbeatSeconds = 1;
    const { events } = connect();
    await waitUntil(() => events.connected === 1, 'welcome');
    await waitUntil(() => server.count('heartbeat') >= 1, 'heartbeat', 3000);
    expect(server.frames.find((f) => f.type === 'heartbeat')).toEqual({
      v: 1,
      type: 'heartbeat',
      presence: { ...FACTS, appliedSettingsHash: null },
    });
  });

  it('closes cleanly with code 1000 on stop', async () => {
    const { events } = connect();
    await waitUntil(() => events.connected === 1, 'welcome');
    const closed = new Promise<number>((resolve) => server.current.on('close', (code) => resolve(code)));
    await client!.stop();
    expect(await closed).toBe(1000);
    await new Promise((r) => setTimeout(r, 100));
    expect(server.sockets).toHaveLength(1);
  });
});

describe('Backoff', () => {
  it('doubles from 0.5 s up to 30 s with jitter in the upper half, and resets', () => {
    const high = new Backoff({ random: () => 1 });
    expect(Array.from({ length: 9 }, () => high.next())).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    const low = new Backoff({ random: () => 0 });
    expect([low.next(), low.next(), low.next()]).toEqual([250, 500, 1000]);
    low.reset();
    expect(low.next()).toBe(250);
  });
});
