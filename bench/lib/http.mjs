// A tiny JSON HTTP client over keep-alive sockets, and a closed-loop load generator.
import http from 'node:http';
import { nowMs } from './stats.mjs';

export function keepAliveAgent(maxSockets = 32) {
  return new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
}

/** One request; resolves { status, body (parsed JSON or text), ms }. */
export function request(base, method, path, { body, headers = {}, agent, timeoutMs = 30_000 } = {}) {
  const payload = body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body);
  const t0 = nowMs();
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${base}${path}`,
      {
        method,
        agent,
        headers: {
          ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
          ...headers,
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let parsed = text;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode, body: parsed, ms: nowMs() - t0, at: nowMs() });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

/** A client bound to a base URL and an API key. */
export function client(base, key, agent = keepAliveAgent()) {
  const headers = key ? { authorization: `Bearer ${key}` } : {};
  const call =
    (method) =>
    (path, body, extra = {}) =>
      request(base, method, path, { body, headers: { ...headers, ...extra }, agent });
  return { base, agent, get: call('GET'), post: call('POST'), put: call('PUT'), del: call('DELETE') };
}

/**
 * Closed loop: `connections` loops each send the next request as soon as the previous answered,
 * for `seconds`. Counts answers by status class; returns requests/s of the expected status.
 * Every request sends `body` with `headers`, unless `next` is given: then `next()` is called once
 * per request and answers `{ body, headers }` (the body serialised already, as a Buffer or string;
 * its headers go on top of `headers`). The first answer with another status than `expect` is kept
 * (status and text) in `firstUnexpected`.
 */
export async function closedLoop({ base, method, path, body, headers = {}, connections, seconds, expect, next }) {
  const agent = keepAliveAgent(connections);
  const payload = next ? null : JSON.stringify(body);
  const hdrs = next ? null : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers };
  const latencies = [];
  const byStatus = {};
  let ok = 0;
  let errors = 0;
  let firstUnexpected = null;
  const t0 = nowMs();
  const end = t0 + seconds * 1000;
  const one = () =>
    new Promise((resolve) => {
      let sendBody = payload;
      let sendHeaders = hdrs;
      if (next) {
        const r = next();
        sendBody = r.body;
        sendHeaders = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(sendBody), ...headers, ...r.headers };
      }
      const s = nowMs();
      const req = http.request(`${base}${path}`, { method, agent, headers: sendHeaders }, (res) => {
        const keep = res.statusCode !== expect && firstUnexpected === null ? [] : null;
        res.on('data', keep ? (c) => keep.push(c) : () => undefined);
        res.on('end', () => {
          byStatus[res.statusCode] = (byStatus[res.statusCode] ?? 0) + 1;
          if (res.statusCode === expect) {
            ok++;
            latencies.push(nowMs() - s);
          } else if (keep && firstUnexpected === null) {
            firstUnexpected = { status: res.statusCode, body: Buffer.concat(keep).toString().slice(0, 2000) };
          }
          resolve();
        });
      });
      req.on('error', (err) => {
        errors++;
        firstUnexpected ??= { status: null, body: String(err.message ?? err) };
        resolve();
      });
      req.end(sendBody);
    });
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (nowMs() < end) await one();
    }),
  );
  const elapsed = (nowMs() - t0) / 1000;
  agent.destroy();
  return { rps: ok / elapsed, ok, errors, byStatus, elapsed, latencies, firstUnexpected };
}

/**
 * Open loop: `count` requests, request i sent at start + i / rate seconds whatever the earlier ones
 * are doing (a late timer sends at once and is counted in `lagMs`). `next(i)` answers `{ body,
 * headers }` (body serialised already). Resolves, once every request has answered or failed, with
 * one record per request: { i, scheduledAt, sentAt, answeredAt, status, text, error } (instants
 * from nowMs(); `sentAt` is taken just before the request is written).
 */
export async function openLoop({ base, method, path, rate, count, next, headers = {}, maxSockets = 256 }) {
  const agent = keepAliveAgent(maxSockets);
  const interval = 1000 / rate;
  const records = [];
  const pending = [];
  const t0 = nowMs() + 5;
  for (let i = 0; i < count; i++) {
    const scheduledAt = t0 + i * interval;
    const wait = scheduledAt - nowMs();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const { body, headers: extra } = next(i);
    const rec = { i, scheduledAt, sentAt: null, answeredAt: null, status: null, text: null, error: null };
    records.push(rec);
    pending.push(
      new Promise((resolve) => {
        const req = http.request(
          `${base}${path}`,
          {
            method,
            agent,
            headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers, ...extra },
          },
          (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => {
              rec.answeredAt = nowMs();
              rec.status = res.statusCode;
              rec.text = Buffer.concat(chunks).toString();
              resolve();
            });
          },
        );
        req.on('error', (err) => {
          rec.answeredAt = nowMs();
          rec.error = String(err.message ?? err);
          resolve();
        });
        rec.sentAt = nowMs();
        req.end(body);
      }),
    );
  }
  await Promise.all(pending);
  agent.destroy();
  return records;
}
