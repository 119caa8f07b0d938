import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown, BeforeApplicationShutdown } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { DataSource } from 'typeorm';
import { WebSocket, WebSocketServer } from 'ws';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { SessionTransitions } from '@rcflow/sessions';
import { AGENT_WS_PATH, AgentMessage, MAX_FRAME_BYTES, ServerMessage, parseAgentMessage } from '@rcflow/agent-protocol';
import { AgentBusScripts, CredentialsRevoked, InboxEntry, type Reply } from '@rcflow/agent-link';
import { TooManyRequests } from '@rcflow/domain';
import { clientAddress } from '../edge/client-address';
import { RateLimits } from '../edge/rate-limits';
import { AGENT_BUS_REDIS, type AgentBusClients } from './agent-bus-clients';
import { AuthenticatedDevice, EnrolmentService, recordPresence } from './enrolment.service';
import { HeartbeatBatcher } from './heartbeat-batcher';
import { PreapprovalAnswers } from './preapproval-answers.service';
import { UpgradeRefusals } from './upgrade-refusals';
import { ViewerTokens } from './viewer-tokens.service';

export { AGENT_BUS_REDIS, type AgentBusClients } from './agent-bus-clients';

interface Connection {
  device: AuthenticatedDevice;
  ws: WebSocket;
  greeted: boolean;
  /** The presence last written for this connection (JSON); a heartbeat repeating it only refreshes the time. */
  presence: string | null;
  tokens: number;
  refilledAt: number;
  violations: number;
  draining: Promise<void> | null;
  drainAgain: boolean;
}

/** Violations of the message rate after which a connection is closed. */
const MAX_VIOLATIONS = 50;

/**
 * The agents' WebSocket: authenticates the device credential on upgrade, validates every frame,
 * keeps presence, delivers commands from the device's inbox (whichever worker queued them) and
 * hands answers back to the waiting worker through Redis. Every message is bound to the device
 * of the credential.
 */
@Injectable()
export class AgentGateway implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('AgentGateway');
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  private readonly connections = new Map<string, Connection>();
  private closing = false;
  private server: Server | null = null;
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.upgrade(req, socket, head);
  private readonly scripts: AgentBusScripts;

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly dataSource: DataSource,
    private readonly enrolment: EnrolmentService,
    private readonly viewerTokens: ViewerTokens,
    private readonly heartbeats: HeartbeatBatcher,
    private readonly transitions: SessionTransitions,
    @Inject(AGENT_BUS_REDIS) private readonly bus: AgentBusClients,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
    private readonly limits: RateLimits,
    private readonly refusals: UpgradeRefusals,
    private readonly preapprovals: PreapprovalAnswers,
  ) {
    this.scripts = new AgentBusScripts(bus.redis, bus.keys);
  }

  /** Agents connected to this process now (the metrics' rcflow_agents_connected). */
  connectedCount(): number {
    return this.connections.size;
  }

  async onApplicationBootstrap(): Promise<void> {
    this.server = this.adapterHost.httpAdapter.getHttpServer() as Server;
    this.server.on('upgrade', this.onUpgrade);
    this.heartbeats.start();
    this.bus.subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.bus.keys.revoked) return this.closeRevoked(message);
      const conn = this.connections.get(message);
      if (conn) this.drain(conn);
    });
    this.bus.subscriber.on('ready', () => void this.listen());
    await this.listen();
  }

  /**
   * Subscribes to the command notifications, at start and after every reconnection: ioredis
   * resubscribes only what had succeeded, so a start while Redis was down would stay deaf. Then
   * drains every connected device, for the notifications missed while away.
   */
  private async listen(): Promise<void> {
    try {
      await this.bus.subscriber.subscribe(this.bus.keys.notify, this.bus.keys.revoked);
    } catch (err) {
      this.logger.warn(`cannot subscribe to agent commands yet (${(err as Error).message}); retried on reconnect`);
      return;
    }
    for (const conn of this.connections.values()) this.drain(conn);
  }

  /** A device's credentials were revoked or replaced (AgentSockets): its socket here closes now, unless the new credential opened it. */
  private closeRevoked(message: string): void {
    const { deviceId, keep } = JSON.parse(message) as CredentialsRevoked;
    const conn = this.connections.get(deviceId);
    if (!conn || conn.device.credentialId === keep) return;
    // Out of the map at once: no command is delivered to it while it closes.
    this.connections.delete(deviceId);
    conn.ws.close(4001, 'device credential revoked');
    // An agent that does not answer the close handshake is cut off.
    setTimeout(() => conn.ws.terminate(), 1000).unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.closing = true;
    this.server?.off('upgrade', this.onUpgrade);
    for (const c of this.connections.values()) c.ws.close(1001, 'server shutting down');
    await this.heartbeats.stop();
  }

  onApplicationShutdown(): void {
    this.wss.close();
  }

  private reject(socket: Duplex, status: number, text: string, headers = '') {
    socket.end(
      `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\n${headers}\r\n${text}`,
    );
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => undefined);
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== AGENT_WS_PATH) {
      this.reject(socket, 404, 'Not Found');
      return;
    }
    if (this.closing) {
      this.reject(socket, 503, 'Service Unavailable');
      return;
    }
    // The address by the same TRUST_PROXY rule as HTTP requests; upgrades have a budget of their own.
    const remote = clientAddress(req, this.adapterHost.httpAdapter.getInstance());
    let authenticated: Awaited<ReturnType<EnrolmentService['authenticate']>>;
    try {
      await this.limits.consume('upgrade', remote);
      authenticated = await this.enrolment.authenticate(req.headers.authorization);
    } catch (err) {
      if (err instanceof TooManyRequests) {
        this.refusals.record(remote, { refused: 'rate limited', stream: 'agent-auth:unknown', deviceId: null });
        const retryAfter = (err.details as { retryAfterSeconds: number }).retryAfterSeconds;
        this.reject(socket, 429, 'Too Many Requests', `Retry-After: ${retryAfter}\r\n`);
      } else {
        this.logger.error(`agent authentication failed: ${(err as Error).message}`);
        this.reject(socket, 503, 'Service Unavailable');
      }
      return;
    }
    if ('refused' in authenticated) {
      this.refusals.record(remote, authenticated);
      this.reject(socket, 401, authenticated.refused);
      return;
    }
    const device = authenticated;
    this.wss.handleUpgrade(req, socket, head, (ws) => this.attach(ws, device));
  }

  private attach(ws: WebSocket, device: AuthenticatedDevice) {
    const previous = this.connections.get(device.deviceId);
    if (previous) previous.ws.close(4000, 'replaced by a newer connection');
    const conn: Connection = {
      device,
      ws,
      greeted: false,
      presence: null,
      tokens: this.config.agent.messagesPerSecond * 2,
      refilledAt: Date.now(),
      violations: 0,
      draining: null,
      drainAgain: false,
    };
    this.connections.set(device.deviceId, conn);
    ws.on('message', (data, isBinary) => {
      // binaryType is 'nodebuffer': data is one Buffer.
      void this.onFrame(conn, isBinary ? Buffer.from(data as Buffer) : (data as Buffer).toString()).catch((err: unknown) => {
        this.logger.error(`frame from ${device.hostname} failed: ${(err as Error).message}`);
        this.send(conn, {
          v: 1,
          type: 'error',
          code: 'unexpected',
          message: 'the server could not process this frame; it will be retried by the sender',
        });
      });
    });
    ws.on('close', () => {
      if (this.connections.get(device.deviceId) === conn) this.connections.delete(device.deviceId);
    });
    ws.on('error', (err) => this.logger.warn(`socket of ${device.hostname}: ${err.message}`));
  }

  private send(conn: Connection, message: ServerMessage): boolean {
    if (conn.ws.readyState !== WebSocket.OPEN) return false;
    conn.ws.send(JSON.stringify(message));
    return true;
  }

  /** A token bucket per connection: a flood from one agent is refused without starving others. */
  private admit(conn: Connection): boolean {
    const rate = this.config.agent.messagesPerSecond;
    const now = Date.now();
    conn.tokens = Math.min(rate * 2, conn.tokens + ((now - conn.refilledAt) / 1000) * rate);
    conn.refilledAt = now;
    if (conn.tokens >= 1) {
      conn.tokens -= 1;
      return true;
    }
    conn.violations++;
    if (conn.violations > MAX_VIOLATIONS) conn.ws.close(1008, 'message rate exceeded');
    else if (conn.violations === 1 || conn.violations % 10 === 0) {
      this.send(conn, {
        v: 1,
        type: 'error',
        code: 'rate_limited',
        message: `more than ${rate} messages per second; frames are being dropped`,
      });
    }
    return false;
  }

  private async onFrame(conn: Connection, raw: string | Buffer): Promise<void> {
    if (!this.admit(conn)) return;
    const parsed = parseAgentMessage(raw);
    if (!parsed.ok) {
      this.logger.warn(`refused frame from ${conn.device.hostname}: ${parsed.error}`);
      this.send(conn, { v: 1, type: 'error', code: parsed.code, message: parsed.error });
      return;
    }
    const msg = parsed.message;
    if (!conn.greeted && msg.type !== 'hello') {
      this.send(conn, { v: 1, type: 'error', code: 'unexpected', message: 'send hello first' });
      return;
    }
    switch (msg.type) {
      case 'hello':
        // Written at once: a device that just connected is eligible now, not at the next flush.
        await recordPresence(this.dataSource.manager, conn.device.deviceId, msg.presence);
        conn.presence = JSON.stringify(msg.presence);
        conn.greeted = true;
        this.send(conn, { v: 1, type: 'welcome', deviceId: conn.device.deviceId, heartbeatSeconds: this.config.agent.heartbeatSeconds });
        this.drain(conn);
        return;
      case 'heartbeat': {
        const presence = JSON.stringify(msg.presence);
        if (presence === conn.presence) {
          this.heartbeats.seen(conn.device.deviceId);
          return;
        }
        // Something changed (user, lock, applied settings): eligibility reads it, so it is written at once.
        await recordPresence(this.dataSource.manager, conn.device.deviceId, msg.presence);
        conn.presence = presence;
        return;
      }
      case 'session_ended':
        if (msg.commandId) return this.reply(conn, msg);
        return this.endedByAgent(conn, msg);
      case 'viewer_token_check': {
        const r = await this.viewerTokens.redeem(conn.device.deviceId, msg.sessionId, msg.token);
        this.send(conn, { v: 1, type: 'viewer_token_result', requestId: msg.requestId, sessionId: msg.sessionId, ...r });
        return;
      }
      case 'preapproval': {
        const r = await this.preapprovals.answer(conn.device.deviceId, msg);
        if (!r.recorded && !r.repeat) {
          this.logger.warn(`${conn.device.hostname} answered notice ${msg.noticeId} (${msg.decision}), refused: ${r.refused}`);
          this.send(conn, {
            v: 1,
            type: 'error',
            code: 'unexpected',
            message: `preapproval for notice ${msg.noticeId} refused: ${r.refused}`,
          });
        }
        return;
      }
      case 'settings_applied':
      case 'settings_rejected':
      case 'consent':
      case 'session_started':
      case 'notice_received':
        return this.reply(conn, msg);
    }
  }

  /** An answer to a command: accepted only for a command sent to this device, then handed to the worker. */
  private async reply(conn: Connection, msg: Reply): Promise<void> {
    const commandId = msg.commandId!;
    if (!(await this.scripts.reply(conn.device.deviceId, commandId, JSON.stringify(msg)))) {
      this.logger.warn(`${conn.device.hostname} answered command ${commandId} that was never sent to it`);
      this.send(conn, { v: 1, type: 'error', code: 'unknown_command', message: `command ${commandId} was not sent to this device` });
    }
  }

  /** The user (or the agent) ended an active session on the device. */
  private async endedByAgent(conn: Connection, msg: Extract<AgentMessage, { type: 'session_ended' }>): Promise<void> {
    const s = await this.transitions.snapshot(msg.sessionId);
    if (s?.deviceId !== conn.device.deviceId) {
      this.logger.warn(`${conn.device.hostname} reported the end of session ${msg.sessionId}, which is not one of its sessions`);
      this.send(conn, { v: 1, type: 'error', code: 'unexpected', message: `session ${msg.sessionId} is not a session of this device` });
      return;
    }
    if (s.state !== 'active') return; // already over: a repeated or late report changes nothing
    await this.transitions.apply({
      session: s,
      actor: { id: conn.device.deviceId, kind: 'agent' },
      steps: [{ to: 'ended', reason: msg.reason, data: { by: msg.by }, patch: { endedAt: new Date() } }],
    });
  }

  /** Sends the device every command queued for it that is still worth delivering. */
  private drain(conn: Connection): void {
    if (conn.draining) {
      conn.drainAgain = true;
      return;
    }
    conn.draining = this.drainInbox(conn)
      .catch((err: unknown) => this.logger.warn(`inbox of ${conn.device.hostname}: ${(err as Error).message}`))
      .finally(() => {
        conn.draining = null;
        if (conn.drainAgain) {
          conn.drainAgain = false;
          this.drain(conn);
        }
      });
  }

  private async drainInbox(conn: Connection): Promise<void> {
    if (!conn.greeted) return;
    const deviceId = conn.device.deviceId;
    for (;;) {
      // One call takes the entries, drops the expired ones and records the rest as sent to this device.
      const { entries, remaining } = await this.scripts.drain(deviceId, Date.now());
      for (let i = 0; i < entries.length; i++) {
        if (!this.send(conn, (JSON.parse(entries[i]!) as InboxEntry).command)) {
          // The socket closed meanwhile: the rest wait, in order, for the next connection.
          await this.bus.redis.lpush(this.bus.keys.inbox(deviceId), ...entries.slice(i).reverse());
          return;
        }
      }
      if (remaining === 0) return;
    }
  }
}
