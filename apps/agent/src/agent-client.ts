import WebSocket from 'ws';
import type { IncomingMessage } from 'node:http';
import { AGENT_WS_PATH, agentMessageSchema, parseServerMessage, PROTOCOL_VERSION } from '@rcflow/agent-protocol';
import { asInbound, type Command, type Outbound } from './protocol-types';
import { Backoff, type BackoffOptions } from './backoff';
import { serverUrl } from './cli-args';
import type { DeviceAgent } from './device-agent';
import type { Logger } from './logger';

export interface AgentClientOptions {
  /** http(s) base URL of the API. */
  server: string;
  /** `rcd_…`; only ever put in the Authorization header. */
  credential: string;
  agent: DeviceAgent;
  log: Logger;
  backoff?: BackoffOptions;
  /** A connection that lasts this long after welcome is stable: the next reconnect starts from the first backoff step. */
  stableMs?: number;
  /** The socket is dropped when no welcome follows the hello within this time. */
  welcomeTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  /** Frames kept while disconnected (answers and session_ended), sent after the next welcome. */
  maxQueued?: number;
  /** Lets the simulator delay, repeat or hold back frames; `send` puts one on the wire (or queues it). */
  outbound?: (frame: Outbound, cause: Command | null, send: (frame: Outbound) => void) => void;
  /** Bounds how many handshakes run at once (the simulator's --concurrency); resolves with a release function. */
  connectGate?: () => Promise<() => void>;
  onCommand?: (command: Command) => void;
  onConnected?: (deviceId: string) => void;
  onDisconnected?: () => void;
  /** The credential was refused: the client stops for good. */
  onFatal?: (message: string) => void;
}

/** Close code the server uses when it drops a connection whose credential it no longer accepts. */
export const CREDENTIAL_REFUSED_CLOSE = 4401;

const v = PROTOCOL_VERSION;

/** Holds the device's WebSocket: hello, welcome, heartbeats, reconnects; commands go to the DeviceAgent. */
export class AgentClient {
  private ws: WebSocket | null = null;
  private readonly backoff: Backoff;
  private readonly url: string;
  private welcomed = false;
  private opened = false;
  private stopped = false;
  private deviceId: string | null = null;
  private heartbeatMs = 0;
  private heartbeatBusy = false;
  private lastHeard = 0;
  private refusal: string | null = null;
  private lastError: string | null = null;
  private readonly outbox: Outbound[] = [];
  private timers: { reconnect?: NodeJS.Timeout; heartbeat?: NodeJS.Timeout; welcome?: NodeJS.Timeout; stable?: NodeJS.Timeout } = {};
  private closeWaiters: (() => void)[] = [];

  constructor(private readonly options: AgentClientOptions) {
    this.backoff = new Backoff(options.backoff);
    this.url = serverUrl(options.server, AGENT_WS_PATH, true);
    options.agent.attach({
      send: (frame, cause) => (options.outbound ? options.outbound(frame, cause, (f) => this.sendOrQueue(f)) : this.sendOrQueue(frame)),
    });
  }

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  get connected(): boolean {
    return this.welcomed && this.ws?.readyState === WebSocket.OPEN;
  }

  /** The id the server welcomed this device under, once it has. */
  get welcomedAs(): string | null {
    return this.deviceId;
  }

  get queued(): number {
    return this.outbox.length;
  }

  /** Drops the connection without a close handshake, as a network failure would; the client reconnects. */
  dropConnection(): void {
    this.ws?.terminate();
  }

  /** Closes the socket cleanly (code 1000) and stays disconnected. */
  async stop(reason = 'agent stopping'): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timers.reconnect);
    const ws = this.ws;
    if (!ws) return;
    const closed = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    if (ws.readyState === WebSocket.OPEN) {
      ws.close(1000, reason);
      // A server that never answers the close frame must not hold the agent's exit.
      const force = setTimeout(() => ws.terminate(), 2000);
      await closed;
      clearTimeout(force);
    } else {
      ws.terminate();
      await closed;
    }
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const release = this.options.connectGate ? await this.options.connectGate() : () => undefined;
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- stop() may have run during the await
    if (this.stopped) {
      release();
      return;
    }
    let released = false;
    const releaseOnce = () => {
      if (released) return;
      released = true;
      release();
    };
    this.refusal = null;
    this.lastError = null;
    this.opened = false;
    const ws = new WebSocket(this.url, {
      headers: { Authorization: `Bearer ${this.options.credential}` },
      handshakeTimeout: this.options.handshakeTimeoutMs ?? 10_000,
      // Frames are small JSON; a zlib context per socket would cost more memory than it saves.
      perMessageDeflate: false,
      maxPayload: 1024 * 1024,
    });
    this.ws = ws;
    ws.on('unexpected-response', (_req, res) => this.onRefused(ws, res));
    ws.on('open', () => {
      releaseOnce();
      this.opened = true;
      this.lastHeard = Date.now();
      this.timers.welcome = setTimeout(() => {
        this.options.log.warn(`no welcome from the server within ${Math.round(this.welcomeTimeoutMs / 1000)} s; reconnecting`);
        ws.terminate();
      }, this.welcomeTimeoutMs);
      void this.sendPresence(ws, 'hello');
    });
    ws.on('message', (data) => this.onMessage(ws, data as Buffer));
    ws.on('pong', () => (this.lastHeard = Date.now()));
    ws.on('ping', () => (this.lastHeard = Date.now()));
    // The first error explains the failure; aborting a refused handshake adds a vaguer one.
    ws.on('error', (err) => (this.lastError ??= err.message));
    ws.on('close', (code, reason) => {
      releaseOnce();
      this.onClose(ws, code, reason.toString('utf8'));
    });
  }

  private get welcomeTimeoutMs() {
    return this.options.welcomeTimeoutMs ?? 15_000;
  }

  private onRefused(ws: WebSocket, res: IncomingMessage) {
    const status = res.statusCode ?? 0;
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => (body.length < 4096 ? (body += chunk) : undefined));
    const done = () => {
      clearTimeout(timer);
      let detail = '';
      try {
        const message = (JSON.parse(body) as { error?: { message?: unknown } }).error?.message;
        if (typeof message === 'string') detail = `: ${message.slice(0, 300)}`;
      } catch {
        /* not the API's error shape */
      }
      this.lastError = `HTTP ${status}${detail}`;
      if (status === 401) this.refusal = `HTTP 401${detail}`;
      ws.terminate();
    };
    const timer = setTimeout(done, 2000);
    res.once('end', done);
    res.once('error', done);
  }

  private onMessage(ws: WebSocket, data: Buffer) {
    if (ws !== this.ws) return;
    this.lastHeard = Date.now();
    // Whatever the server sends, and whatever fails while handling it (a full disk), must not
    // take the agent down: it is logged and the connection carries on.
    try {
      const parsed = parseServerMessage(data);
      if (!parsed.ok) {
        this.options.agent.malformed(data, parsed);
        return;
      }
      const message = asInbound(parsed.message);
      if (message.type === 'welcome') {
        this.onWelcome(ws, message.deviceId, message.heartbeatSeconds);
        return;
      }
      if (message.type !== 'error') this.options.onCommand?.(message);
      this.options.agent
        .handle(parsed.message)
        .catch((err: unknown) => this.options.log.error(`handling ${message.type} failed: ${(err as Error).message}`));
    } catch (err) {
      this.options.log.error(`handling a server frame failed: ${(err as Error).message}`);
    }
  }

  private onWelcome(ws: WebSocket, deviceId: string, heartbeatSeconds: number) {
    clearTimeout(this.timers.welcome);
    const first = !this.welcomed;
    this.welcomed = true;
    this.deviceId = deviceId;
    this.options.agent.welcomed(deviceId);
    clearInterval(this.timers.heartbeat);
    this.heartbeatMs = heartbeatSeconds * 1000;
    this.timers.heartbeat = setInterval(() => this.heartbeat(ws), this.heartbeatMs);
    if (!first) return;
    this.options.log.info(`agent connected as ${deviceId}`);
    this.timers.stable = setTimeout(() => this.backoff.reset(), this.options.stableMs ?? 10_000);
    for (const frame of this.outbox.splice(0)) this.sendOrQueue(frame);
    this.options.onConnected?.(deviceId);
  }

  private heartbeat(ws: WebSocket) {
    if (ws !== this.ws || ws.readyState !== WebSocket.OPEN) return;
    // Pings are answered by any WebSocket server, so silence means the path is dead even if TCP
    // has not noticed yet (a NAT that forgot us, a server that froze).
    const silentMs = Date.now() - this.lastHeard;
    if (silentMs > 2 * this.heartbeatMs + 5000) {
      this.options.log.warn(`nothing heard from the server for ${Math.round(silentMs / 1000)} s; reconnecting`);
      ws.terminate();
      return;
    }
    try {
      ws.ping();
    } catch {
      /* closing already */
    }
    if (this.heartbeatBusy) return;
    this.heartbeatBusy = true;
    void this.sendPresence(ws, 'heartbeat').finally(() => (this.heartbeatBusy = false));
  }

  private async sendPresence(ws: WebSocket, type: 'hello' | 'heartbeat') {
    try {
      const presence = await this.options.agent.presence();
      if (ws === this.ws && ws.readyState === WebSocket.OPEN) this.write(ws, { v, type, presence });
    } catch (err) {
      this.options.log.error(`could not read presence for ${type}: ${(err as Error).message}`);
    }
  }

  private sendOrQueue(frame: Outbound) {
    const ws = this.ws;
    if (ws && this.welcomed && ws.readyState === WebSocket.OPEN) {
      this.write(ws, frame);
      return;
    }
    this.outbox.push(frame);
    const max = this.options.maxQueued ?? 1000;
    if (this.outbox.length > max) {
      const dropped = this.outbox.splice(0, this.outbox.length - max);
      this.options.log.warn(`dropped ${dropped.length} queued frame(s) while disconnected; redelivered commands will be answered again`);
    }
  }

  private write(ws: WebSocket, frame: Outbound) {
    // Checked here so a bug shows up as one clear line in the agent's log, not a server-side bad_frame.
    const checked = agentMessageSchema.safeParse(frame);
    if (!checked.success) {
      this.options.log.error(
        `not sending an invalid ${frame.type} frame: ${checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
      return;
    }
    ws.send(JSON.stringify(frame));
  }

  private onClose(ws: WebSocket, code: number, reason: string) {
    if (ws !== this.ws) return;
    const wasWelcomed = this.welcomed;
    this.ws = null;
    this.welcomed = false;
    clearTimeout(this.timers.welcome);
    clearTimeout(this.timers.stable);
    clearInterval(this.timers.heartbeat);
    if (wasWelcomed) this.options.onDisconnected?.();
    for (const resolve of this.closeWaiters.splice(0)) resolve();
    if (this.stopped) return;

    if (code === CREDENTIAL_REFUSED_CLOSE || this.refusal) {
      this.stopped = true;
      const why = code === CREDENTIAL_REFUSED_CLOSE ? `close code 4401${reason ? `: ${reason}` : ''}` : this.refusal;
      this.options.onFatal?.(`the server refused the device credential (${why})`);
      return;
    }
    const delay = this.backoff.next();
    const closeText = `code ${code}${reason ? `: ${reason}` : ''}`;
    const what = wasWelcomed
      ? `disconnected (${closeText})`
      : this.opened
        ? `connection closed before the welcome (${closeText})`
        : `could not connect to ${this.url}${this.lastError ? `: ${this.lastError}` : ''}`;
    this.options.log.warn(`${what}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
    this.timers.reconnect = setTimeout(() => void this.connect(), delay);
  }
}
