import * as fs from 'node:fs';
import { z } from 'zod';
import { parseCredential } from '@rcflow/agent-protocol';
import { AgentClient } from './agent-client';
import { RatioConsentProvider } from './consent-providers';
import { DeviceAgent } from './device-agent';
import { EnrolmentError, enrolWithRetry } from './enrolment';
import { labelledLogger, silentLogger, type Logger } from './logger';
import type { MachineFacts } from './presence';
import type { Command, Outbound } from './protocol-types';
import { seededDraw, Semaphore } from './seeded-random';
import type { SimulatorOptions } from './simulator-options';
import { MemoryStateStore, writeFileAtomic } from './state-store';

/** Answers a virtual agent remembers; enough for redeliveries, small enough for thousands of agents. */
const ANSWERS_PER_AGENT = 100;

export interface FleetCounters {
  enrolled: number;
  enrolFailed: number;
  connected: number;
  commands: number;
  answers: number;
  duplicates: number;
  late: number;
  dropouts: number;
  reconnects: number;
  refused: number;
}

interface VirtualAgent {
  hostname: string;
  index: number;
  deviceId: string;
  client: AgentClient;
  received: number;
  refused: boolean;
}

interface Credentials {
  deviceId: string;
  credential: string;
}

const stateFileSchema = z.object({
  server: z.string(),
  agents: z.record(
    z.string(),
    z.object({ deviceId: z.string(), credential: z.string().refine((c) => parseCredential(c, 'rcd') !== null) }),
  ),
});

/** The simulator's N virtual agents: each a DeviceAgent with in-memory state and drawn consent, behind its own AgentClient. */
export class VirtualFleet {
  readonly counters: FleetCounters = {
    enrolled: 0,
    enrolFailed: 0,
    connected: 0,
    commands: 0,
    answers: 0,
    duplicates: 0,
    late: 0,
    dropouts: 0,
    reconnects: 0,
    refused: 0,
  };
  private readonly agents: VirtualAgent[] = [];
  private readonly credentials = new Map<string, Credentials>();
  private readonly gate: Semaphore;
  private readyAnnounced = false;
  private stopping = false;
  private saveTimer: NodeJS.Timeout | null = null;
  private readonly agentLog: Logger;

  constructor(
    private readonly o: SimulatorOptions,
    private readonly log: Logger,
  ) {
    this.gate = new Semaphore(o.concurrency);
    // Thousands of agents each logging every reconnect would bury the status lines.
    this.agentLog = o.verbose ? log : { ...silentLogger, error: (m) => log.error(m) };
  }

  hostnames(): string[] {
    return Array.from({ length: this.o.count }, (_, i) => `${this.o.prefix}-${this.o.firstIndex + i}`);
  }

  /** Agents the fleet runs (enrolled and not refused). */
  get live(): number {
    return this.agents.length - this.counters.refused;
  }

  /** Called when the server has refused every virtual agent's credential. */
  onAllRefused: () => void = () => undefined;

  loadState(): void {
    const file = this.o.stateFile;
    if (!file || !fs.existsSync(file)) return;
    let parsed: z.infer<typeof stateFileSchema>;
    try {
      parsed = stateFileSchema.parse(JSON.parse(fs.readFileSync(file, 'utf8')));
    } catch {
      throw new Error(`state file ${file} is not a simulator state file; move it aside to start over`);
    }
    if (parsed.server !== this.o.server)
      this.log.warn(`state file ${file} was written for ${parsed.server}; using its credentials with ${this.o.server}`);
    for (const [hostname, creds] of Object.entries(parsed.agents)) this.credentials.set(hostname, creds);
  }

  private saveState(): void {
    if (!this.o.stateFile) return;
    const agents: Record<string, Credentials> = {};
    for (const [hostname, creds] of this.credentials) agents[hostname] = creds;
    writeFileAtomic(this.o.stateFile, `${JSON.stringify({ server: this.o.server, agents })}\n`);
  }

  /** Batches writes: a fleet enrolling thousands would otherwise rewrite the file thousands of times. */
  private scheduleSave(): void {
    if (!this.o.stateFile || this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = null;
      this.trySave();
    }, 250);
  }

  private trySave(): void {
    try {
      this.saveState();
    } catch (err) {
      this.log.error(`could not write the state file: ${(err as Error).message}`);
    }
  }

  /** Enrols the hosts the state file does not know; returns false when none could be enrolled. */
  async enrolMissing(): Promise<void> {
    const missing = this.hostnames().filter((h) => !this.credentials.has(h));
    const reused = this.o.count - missing.length;
    if (reused > 0) this.log.info(`reusing ${reused} stored credential(s)`);
    if (missing.length === 0) return;
    const token = this.o.enrolToken;
    if (!token) throw new Error(`${missing.length} virtual agent(s) are not enrolled yet; pass --enrol rce_… with an enrolment token`);
    this.log.info(`enrolling ${missing.length} virtual agent(s), ${this.o.concurrency} at a time`);
    let reported = 0;
    await Promise.all(
      missing.map((hostname) =>
        this.gate.run(async () => {
          if (this.stopping) return;
          try {
            const answer = await enrolWithRetry(
              this.o.server,
              { token, hostname, presence: { ...this.facts(hostname), appliedSettingsHash: null } },
              { log: this.agentLog, shouldStop: () => this.stopping },
            );
            this.credentials.set(hostname, answer);
            this.counters.enrolled++;
            this.scheduleSave();
          } catch (err) {
            this.counters.enrolFailed++;
            // One refused token usually means all are refused; a handful of lines says as much.
            if (reported++ < 5) this.log.error(`${hostname}: ${(err as Error).message}`);
            if (!(err instanceof EnrolmentError)) throw err;
          }
        }),
      ),
    );
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = null;
    this.trySave();
    if (this.counters.enrolFailed > 0) this.log.error(`${this.counters.enrolFailed} virtual agent(s) could not enrol`);
  }

  private facts(hostname: string): MachineFacts {
    const index = hostname.slice(this.o.prefix.length + 1);
    return {
      agentVersion: '1.0.0',
      osFamily: this.o.osFamily,
      osBuild: this.o.osFamily === 'windows' ? '10.0.22631' : this.o.osFamily === 'macos' ? '14.5' : '6.8.0',
      fqdn: this.o.domain ? `${hostname}.${this.o.domain}` : null,
      domainJoined: this.o.domain !== null,
      domain: this.o.domain,
      loggedOnUser: `user${index}`,
      locked: false,
      localAdministrators: [],
    };
  }

  start(): void {
    for (const [i, hostname] of this.hostnames().entries()) {
      const creds = this.credentials.get(hostname);
      if (creds) this.agents.push(this.createAgent(hostname, this.o.firstIndex + i, creds));
    }
    if (this.agents.length === 0) return;
    this.log.info(`connecting ${this.agents.length} virtual agent(s), ${this.o.concurrency} handshakes at a time`);
    for (const agent of this.agents) agent.client.start();
  }

  private createAgent(hostname: string, index: number, creds: Credentials): VirtualAgent {
    const o = this.o;
    const log = labelledLogger(this.agentLog, hostname);
    const store = new MemoryStateStore({
      maxAnswered: ANSWERS_PER_AGENT,
      keepSettings: false,
      enrolment: { ...creds, hostname, server: o.server, enrolledAt: '' },
    });
    const facts = this.facts(hostname);
    const device = new DeviceAgent({
      store,
      consent: new RatioConsentProvider(o.consent, (request) => seededDraw(o.seed, 'consent', hostname, request.commandId)),
      facts: () => facts,
      viewerEndpoint: { host: facts.fqdn ?? hostname, port: 5938 },
      log,
      preapproval: o.preapproval,
    });
    const va: VirtualAgent = {
      hostname,
      index,
      deviceId: creds.deviceId,
      client: null as unknown as AgentClient,
      received: 0,
      refused: false,
    };
    va.client = new AgentClient({
      server: o.server,
      credential: creds.credential,
      agent: device,
      log,
      connectGate: () => this.gate.acquire(),
      outbound: (frame, cause, send) => this.deliver(hostname, frame, cause, send),
      onCommand: () => {
        this.counters.commands++;
        va.received++;
        if (o.dropoutRate > 0 && va.client.connected && seededDraw(o.seed, 'dropout', hostname, va.received) < o.dropoutRate) {
          this.counters.dropouts++;
          va.client.dropConnection();
        }
      },
      onConnected: (deviceId) => {
        va.deviceId = deviceId;
        this.counters.connected++;
        this.checkReady();
      },
      onDisconnected: () => {
        this.counters.connected--;
        if (!this.stopping) this.counters.reconnects++;
      },
      onFatal: (message) => {
        if (va.refused) return;
        va.refused = true;
        this.counters.refused++;
        // A wiped server refuses the whole fleet; the first few lines and the status count say so.
        if (this.counters.refused <= 5) this.log.error(`${hostname}: ${message}; this virtual agent stops`);
        if (this.counters.refused === 6) this.log.error('more virtual agents refused; the status line counts them');
        if (this.live === 0) this.onAllRefused();
        else this.checkReady();
      },
    });
    return va;
  }

  /** Applies latency, duplicates and late answers, each decided per command from the seed. */
  private deliver(hostname: string, frame: Outbound, cause: Command | null, send: (frame: Outbound) => void): void {
    if (!cause) return send(frame);
    const o = this.o;
    const c = this.counters;
    c.answers++;
    const id = cause.commandId;
    let delay = o.latencyMs.min + Math.floor(seededDraw(o.seed, 'latency', hostname, id) * (o.latencyMs.max - o.latencyMs.min + 1));
    if (o.lateAckRate > 0 && seededDraw(o.seed, 'late', hostname, id) < o.lateAckRate) {
      c.late++;
      delay += o.lateAckMs + (cause.type === 'start_session' ? cause.consent.timeoutMs : 0);
    }
    const duplicate = o.duplicateAckRate > 0 && seededDraw(o.seed, 'duplicate', hostname, id) < o.duplicateAckRate;
    const go = () => {
      send(frame);
      if (duplicate) {
        c.duplicates++;
        send(frame);
      }
    };
    // The frames of one answer share a delay, and timers of equal delay fire in order, so
    // consent still precedes session_started.
    if (delay > 0) setTimeout(go, delay);
    else go();
  }

  private checkReady(): void {
    if (this.readyAnnounced || this.agents.length === 0) return;
    const live = this.live;
    if (live > 0 && this.counters.connected >= live) {
      this.readyAnnounced = true;
      this.log.info(`simulator ready: ${live} agents connected`);
    }
  }

  statusLine(): string {
    const c = this.counters;
    return (
      `simulator status: connected ${c.connected}/${this.live}, commands ${c.commands}, answers ${c.answers}` +
      ` (duplicates ${c.duplicates}, late ${c.late}), dropouts ${c.dropouts}, reconnects ${c.reconnects}, refused ${c.refused}` +
      (c.enrolFailed ? `, enrolment failures ${c.enrolFailed}` : '')
    );
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.trySave();
    await Promise.all(this.agents.map((a) => a.client.stop('simulator stopping')));
  }
}
