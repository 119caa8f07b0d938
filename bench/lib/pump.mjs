// Keeps sessions flowing over a pool of devices: asks for a session on a free device (POST
// /v1/sessions), watches the database for it to become active (or end otherwise), then ends it
// (POST /v1/sessions/:id/cancel), which frees the device for the next session. A device holds
// one controlling session at a time, so this is how a sustained run reuses devices.
import { client, keepAliveAgent } from './http.mjs';
import { nowMs } from './stats.mjs';
import { sleep } from './proc.mjs';

const TERMINAL = ['ended', 'cancelled', 'rejected', 'failed', 'denied', 'consent_timeout', 'interrupted'];

export class SessionPump {
  /**
   * api: base URL; key: operator API key; db: pg pool; devices: device ids.
   * posters: parallel POST loops (closed loop), or ratePerSecond for an open-loop pace.
   */
  constructor({ api, key, db, devices, posters = 16, ratePerSecond = null, pollMs = 50, onAccepted = null }) {
    this.http = client(api, key, keepAliveAgent(posters + 32));
    this.db = db;
    this.free = [...devices];
    this.posters = posters;
    this.rate = ratePerSecond;
    this.pollMs = pollMs;
    this.onAccepted = onAccepted;
    this.outstanding = new Map(); // sessionId -> { deviceId, acceptedAt }
    this.cancelling = new Set();
    this.counts = { posted: 0, accepted: 0, refused: 0, active: 0, ended: 0, noFreeDevice: 0, cancelFailed: 0, errors: 0 };
    this.terminal = {};
    this.running = false;
    this.waiters = [];
  }

  start() {
    this.running = true;
    this.loops = [this.pollLoop()];
    if (this.rate) this.loops.push(this.paceLoop());
    else for (let i = 0; i < this.posters; i++) this.loops.push(this.postLoop());
  }

  /** Stops asking; optionally waits until every outstanding session has ended. */
  async stop({ drainMs = 30_000 } = {}) {
    this.running = false;
    for (const w of this.waiters.splice(0)) w();
    const deadline = Date.now() + drainMs;
    this.draining = true;
    while (this.outstanding.size > 0 && Date.now() < deadline) await sleep(100);
    this.draining = false;
    this.stopped = true;
    await Promise.all(this.loops);
    this.http.agent.destroy();
    return this.outstanding.size;
  }

  takeDevice() {
    return this.free.shift();
  }

  release(deviceId) {
    this.free.push(deviceId);
    const w = this.waiters.shift();
    if (w) w();
  }

  async ask(deviceId) {
    this.counts.posted++;
    try {
      const r = await this.http.post('/v1/sessions', { deviceId, type: 'remote-control', access: 'full' });
      if (r.status !== 202) {
        this.counts.refused++;
        if (this.counts.refused <= 3) console.error(`  POST /v1/sessions answered ${r.status}: ${JSON.stringify(r.body).slice(0, 300)}`);
        await sleep(100);
        this.release(deviceId);
        return;
      }
      this.counts.accepted++;
      this.outstanding.set(r.body.id, { deviceId, acceptedAt: r.at });
      this.onAccepted?.(r.body.id, r.at, deviceId);
    } catch (err) {
      this.counts.errors++;
      if (this.counts.errors <= 3) console.error(`  POST /v1/sessions failed: ${err.message}`);
      await sleep(100);
      this.release(deviceId);
    }
  }

  async postLoop() {
    while (this.running) {
      const d = this.takeDevice();
      if (!d) {
        await new Promise((r) => this.waiters.push(r));
        continue;
      }
      await this.ask(d);
    }
  }

  /** Open loop: one request every 1/rate s, whatever the answers do; a tick without a free device is counted. */
  async paceLoop() {
    const interval = 1000 / this.rate;
    const t0 = nowMs();
    for (let i = 0; this.running; i++) {
      const wait = t0 + i * interval - nowMs();
      if (wait > 1) await sleep(wait);
      const d = this.takeDevice();
      if (!d) {
        this.counts.noFreeDevice++;
        continue;
      }
      void this.ask(d);
    }
  }

  /**
   * Every pollMs: sessions that became active (through the state index, cheap); every second:
   * outstanding sessions that ended some other way (rejected, failed, ...), by id.
   */
  async pollLoop() {
    let lastSlow = 0;
    while (!this.stopped) {
      const rows = [];
      const q = (sql, params) =>
        this.db.query(sql, params).then(
          (r) => rows.push(...r.rows),
          (err) => console.error(`  poll: ${err.message}`),
        );
      if (this.outstanding.size) await q(`SELECT id, state FROM sessions WHERE state = 'active'`);
      if (Date.now() - lastSlow > 1000) {
        lastSlow = Date.now();
        const ids = [...this.outstanding.keys()];
        if (ids.length) await q(`SELECT id, state FROM sessions WHERE id = ANY($1::uuid[]) AND state = ANY($2)`, [ids, TERMINAL]);
      }
      for (const row of rows) {
        if (!this.outstanding.has(row.id) || this.cancelling.has(row.id)) continue;
        if (row.state === 'active') {
          this.counts.active++;
          void this.end(row.id);
        } else {
          this.terminal[row.state] = (this.terminal[row.state] ?? 0) + 1;
          this.finish(row.id);
        }
      }
      await sleep(this.pollMs);
    }
  }

  finish(id) {
    const o = this.outstanding.get(id);
    if (!o) return;
    this.outstanding.delete(id);
    this.cancelling.delete(id);
    if (this.running || this.draining) this.release(o.deviceId);
  }

  async end(id) {
    this.cancelling.add(id);
    try {
      const r = await this.http.post(`/v1/sessions/${id}/cancel`, {});
      if (r.status === 200) this.counts.ended++;
      else {
        this.counts.cancelFailed++;
        if (this.counts.cancelFailed <= 3) console.error(`  cancel ${id}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      }
    } catch (err) {
      this.counts.cancelFailed++;
      if (this.counts.cancelFailed <= 3) console.error(`  cancel ${id}: ${err.message}`);
    }
    this.finish(id);
  }
}
