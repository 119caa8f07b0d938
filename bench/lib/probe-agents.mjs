// Probe agents for the latency benchmark: minimal agents speaking rcflow's agent protocol
// (libs/agent-protocol) in the benchmark's own process, so the arrival of a command is timed on
// the same clock as the 202 of the request. They answer every command at once, keep the applied
// settings hash in their presence (as the reference agent does) and send heartbeats.
import { WebSocket } from 'ws';
import { request } from './http.mjs';
import { nowMs } from './stats.mjs';

const presence = (i, appliedSettingsHash) => ({
  agentVersion: '1.0.0',
  osFamily: 'windows',
  osBuild: '10.0.22631',
  fqdn: null,
  domainJoined: false,
  domain: null,
  loggedOnUser: `user${i}`,
  locked: false,
  localAdministrators: [],
  appliedSettingsHash,
});

export class ProbeFleet {
  constructor(base) {
    this.base = base;
    this.agents = [];
    /** sessionId -> { startArrivedAt, agentMs } */
    this.sessions = new Map();
    this.errors = [];
  }

  async enrol(token, count, prefix = 'PROBE', concurrency = 16) {
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) {
          const i = ++next;
          const hostname = `${prefix}-${i}`;
          const r = await request(this.base, 'POST', '/v1/agent/enrol', { body: { token, hostname, presence: presence(i, null) } });
          if (r.status !== 201 && r.status !== 200) throw new Error(`enrol ${hostname}: ${r.status} ${JSON.stringify(r.body)}`);
          this.agents.push({ i, hostname, deviceId: r.body.deviceId, credential: r.body.credential, applied: null, ws: null });
        }
      }),
    );
  }

  session(id) {
    let s = this.sessions.get(id);
    if (!s) this.sessions.set(id, (s = { startArrivedAt: null, agentMs: 0 }));
    return s;
  }

  async connect(agent) {
    const ws = new WebSocket(`${this.base.replace(/^http/, 'ws')}/v1/agent/ws`, {
      headers: { authorization: `Bearer ${agent.credential}` },
    });
    agent.ws = ws;
    const send = (frame) => ws.send(JSON.stringify({ v: 1, ...frame }));
    const welcomed = new Promise((resolve, reject) => {
      ws.once('unexpected-response', (_q, res) => reject(new Error(`${agent.hostname}: HTTP ${res.statusCode}`)));
      ws.once('error', reject);
      ws.on('message', (data) => {
        const arrived = nowMs();
        const m = JSON.parse(data.toString());
        switch (m.type) {
          case 'welcome':
            agent.heartbeat = setInterval(
              () => send({ type: 'heartbeat', presence: presence(agent.i, agent.applied) }),
              m.heartbeatSeconds * 1000,
            );
            resolve();
            break;
          case 'apply_settings': {
            agent.applied = m.versionHash;
            send({ type: 'settings_applied', commandId: m.commandId, versionHash: m.versionHash });
            this.session(m.commandId.split(':')[0]).agentMs += nowMs() - arrived;
            break;
          }
          case 'start_session': {
            const s = this.session(m.sessionId);
            s.startArrivedAt = arrived;
            send({
              type: 'session_started',
              commandId: m.commandId,
              sessionId: m.sessionId,
              connect: { host: agent.hostname, port: 5938 },
            });
            break;
          }
          case 'end_session':
            send({ type: 'session_ended', commandId: m.commandId, sessionId: m.sessionId, by: 'viewer', reason: null });
            break;
          case 'error':
            this.errors.push(`${agent.hostname}: ${m.code} ${m.message}`);
            break;
          default:
        }
      });
    });
    ws.once('open', () => send({ type: 'hello', presence: presence(agent.i, agent.applied) }));
    await welcomed;
  }

  async connectAll(concurrency = 32) {
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < this.agents.length) await this.connect(this.agents[next++]);
      }),
    );
  }

  close() {
    for (const a of this.agents) {
      clearInterval(a.heartbeat);
      a.ws?.close();
    }
  }
}
