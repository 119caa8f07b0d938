import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { AGENT_WS_PATH, formatCredential, parseAgentMessage, PROTOCOL_VERSION } from '@rcflow/agent-protocol';
import type { Outbound } from '../protocol-types';

interface Device {
  deviceId: string;
  hostname: string;
  revoked: boolean;
}

/**
 * The server side of the agent channel, just enough of it to test agents against: enrolment,
 * credential checks on upgrade, hello → welcome, and a record of every frame received.
 */
export class FakeRcflowServer {
  readonly devices = new Map<string, Device>();
  /** Enrolment tokens and the uses they have left. */
  readonly tokens = new Map<string, number>();
  /** Every frame received, oldest first, with the device that sent it. */
  readonly frames: { deviceId: string; frame: Outbound }[] = [];
  /** Raw texts agents sent that failed validation. */
  readonly invalid: string[] = [];
  readonly sockets = new Map<string, WebSocket>();
  connections = 0;
  heartbeatSeconds = 30;
  private readonly http = http.createServer((req, res) => this.onRequest(req, res));
  private readonly wss = new WebSocketServer({ noServer: true });

  async start(): Promise<string> {
    this.http.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    await new Promise<void>((resolve) => this.http.listen(0, '127.0.0.1', resolve));
    return this.url;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  newToken(uses = 1): string {
    const token = formatCredential('rce', randomUUID(), randomBytes(32).toString('base64url'));
    this.tokens.set(token, uses);
    return token;
  }

  /** Registers a device directly, as if it had enrolled earlier; returns its credential. */
  addDevice(hostname: string, deviceId: string = randomUUID()): { deviceId: string; credential: string } {
    const credential = formatCredential('rcd', randomUUID(), randomBytes(32).toString('base64url'));
    this.devices.set(credential, { deviceId, hostname, revoked: false });
    return { deviceId, credential };
  }

  revoke(deviceId: string): void {
    for (const d of this.devices.values()) if (d.deviceId === deviceId) d.revoked = true;
  }

  send(deviceId: string, frame: object): void {
    const ws = this.sockets.get(deviceId);
    if (!ws) throw new Error(`device ${deviceId} is not connected`);
    ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  sendRaw(deviceId: string, text: string): void {
    const ws = this.sockets.get(deviceId);
    if (!ws) throw new Error(`device ${deviceId} is not connected`);
    ws.send(text);
  }

  framesOf(deviceId: string, type?: Outbound['type']): Outbound[] {
    return this.frames.filter((f) => f.deviceId === deviceId && (!type || f.frame.type === type)).map((f) => f.frame);
  }

  /** Resolves once `predicate` holds; polls, so it also sees changes on the agent's side. */
  async waitFor(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse) {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'POST' || req.url !== '/v1/agent/enrol') {
      reply(404, { error: { status: 404, code: 'not_found', message: 'no such route' } });
      return;
    }
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    req.on('end', () => {
      const body = JSON.parse(text) as { token: string; hostname: string };
      const uses = this.tokens.get(body.token);
      if (!uses)
        return reply(401, {
          error: { status: 401, code: 'enrolment_token_invalid', message: 'the enrolment token is unknown, expired or used up' },
        });
      this.tokens.set(body.token, uses - 1);
      const { deviceId, credential } = this.addDevice(body.hostname);
      reply(201, { deviceId, credential });
    });
  }

  private onUpgrade(req: http.IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) {
    const credential = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const device = credential ? this.devices.get(credential) : undefined;
    if (req.url !== AGENT_WS_PATH || !device || device.revoked) {
      const body = JSON.stringify({ error: { status: 401, code: 'unauthorized', message: 'unknown or revoked device credential' } });
      socket.end(
        `HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      );
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.connections++;
      ws.on('message', (data: Buffer) => {
        const parsed = parseAgentMessage(data);
        if (!parsed.ok) {
          this.invalid.push(data.toString('utf8'));
          return;
        }
        const frame = parsed.message as unknown as Outbound;
        this.frames.push({ deviceId: device.deviceId, frame });
        if (frame.type === 'hello') {
          this.sockets.set(device.deviceId, ws);
          ws.send(
            JSON.stringify({ v: PROTOCOL_VERSION, type: 'welcome', deviceId: device.deviceId, heartbeatSeconds: this.heartbeatSeconds }),
          );
        }
      });
      ws.on('close', () => {
        if (this.sockets.get(device.deviceId) === ws) this.sockets.delete(device.deviceId);
      });
    });
  }
}
