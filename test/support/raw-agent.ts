import { WebSocket } from 'ws';
import { AGENT_WS_PATH, Presence, ServerMessage } from '../../libs/agent-protocol/src';

export const presence = (over: Partial<Presence> = {}): Presence => ({
  agentVersion: '1.2.0',
  osFamily: 'windows',
  osBuild: '10.0.22631',
  fqdn: null,
  domainJoined: true,
  domain: 'CONTOSO',
  loggedOnUser: 'CONTOSO\\carol',
  locked: false,
  localAdministrators: [],
  appliedSettingsHash: null,
  ...over,
});

/** A hand-driven agent connection for protocol tests: sends exactly what the test says. */
export class RawAgent {
  readonly received: ServerMessage[] = [];
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => {
      try {
        this.received.push(JSON.parse((d as Buffer).toString()));
      } catch {
        /* the server only sends JSON */
      }
    });
  }

  static async connect(base: string, credential: string): Promise<RawAgent> {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}${AGENT_WS_PATH}`, { headers: { authorization: `Bearer ${credential}` } });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
    return new RawAgent(ws);
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  async next<T extends ServerMessage['type']>(type: T, timeoutMs = 15_000, from = 0): Promise<Extract<ServerMessage, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const m = this.received.slice(from).find((x) => x.type === type);
      if (m) return m as Extract<ServerMessage, { type: T }>;
      if (this.ws.readyState > WebSocket.OPEN) throw new Error(`socket closed while waiting for ${type}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no ${type} within ${timeoutMs} ms; got ${JSON.stringify(this.received.map((m) => m.type))}`);
  }

  async hello(p: Partial<Presence> = {}) {
    this.send({ v: 1, type: 'hello', presence: presence(p) });
    return this.next('welcome');
  }

  close(): void {
    this.ws.close();
  }
}
