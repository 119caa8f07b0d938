// Generates chained audit events for bench/audit.mjs and loads them with COPY through psql.
// Run as a child process, one per core: `node audit-seed.mjs JSON` where JSON is
// { url, key, dist, rows, part, parts, seed, now }. Part p of `parts` generates the sessions
// [p·S/parts, (p+1)·S/parts) of S = ceil(rows / 7) sessions; each session is one stream of 7
// events (the last one possibly shorter), hashed with rcflow's own eventHash from dist/.
// Viewer and device ids are derived from `seed`, so every part (and the benchmark) knows them.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const DAY = 86_400_000;
export const STEPS = ['requested', 'validating', 'eligible', 'pushing_settings', 'awaiting_consent', 'active', 'ended'];
export const VIEWERS = 1000;
export const DEVICES = 5000;

/** A version-4-shaped UUID derived from the seed and a name (deterministic, so parts agree). */
export function derivedUuid(seed, name) {
  const h = createHash('sha256').update(`${seed}:${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${'89ab'[parseInt(h[16], 16) & 3]}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export const viewerIds = (seed) => Array.from({ length: VIEWERS }, (_, i) => derivedUuid(seed, `viewer:${i}`));

/** psql running `COPY table (columns) FROM STDIN` (text format), fed through its standard input. */
function copyIn(url, table, columns) {
  const p = spawn('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', `COPY ${table} (${columns}) FROM STDIN`], {
    stdio: ['pipe', 'inherit', 'inherit'],
  });
  const done = new Promise((resolve, reject) => {
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`psql COPY ${table} exited with ${code}`))));
  });
  return {
    async write(text) {
      if (!p.stdin.write(text)) await once(p.stdin, 'drain');
    },
    async end() {
      p.stdin.end();
      await done;
    },
  };
}

async function main() {
  const o = JSON.parse(process.argv[2]);
  const { eventHash, GENESIS_HASH } = require(`${o.dist}/libs/audit/src/index.js`);
  const viewers = viewerIds(o.seed);
  const devices = Array.from({ length: DEVICES }, (_, i) => derivedUuid(o.seed, `device:${i}`));
  const sessions = Math.ceil(o.rows / STEPS.length);
  const first = Math.floor((o.part * sessions) / o.parts);
  const end = Math.floor(((o.part + 1) * sessions) / o.parts);
  const events = copyIn(
    o.url,
    'audit_events',
    'stream, seq, occurred_at, actor_id, actor_kind, action, outcome, session_id, device_id, viewer_id, ticket_ref, reason, data, prev_hash, hash',
  );
  const heads = copyIn(o.url, 'audit_stream_heads', 'stream, seq, hash');
  let lines = '';
  let headLines = '';
  for (let s = first; s < end; s++) {
    const sessionId = derivedUuid(o.seed, `session:${s}`);
    const stream = `session:${sessionId}`;
    const viewer = viewers[s % viewers.length];
    const device = devices[s % devices.length];
    // Spread over 90 days; a cheap deterministic scatter rather than Math.random so reruns match.
    const start = o.now - (((s * 2654435761) % 1_000_003) / 1_000_003) * 90 * DAY;
    const n = Math.min(STEPS.length, o.rows - s * STEPS.length);
    let prev = GENESIS_HASH;
    for (let i = 0; i < n; i++) {
      const e = {
        stream,
        seq: i + 1,
        occurredAt: new Date(Math.floor(start) + i * 20),
        actorId: i === 0 ? viewer : null,
        actorKind: i === 0 ? 'principal' : 'system',
        action: `session.${STEPS[i]}`,
        outcome: STEPS[i],
        sessionId,
        deviceId: device,
        viewerId: viewer,
        ticketRef: null,
        reason: null,
        data: i === 0 ? { type: 'remote-control', access: 'full', version: 1 } : { from: STEPS[i - 1], to: STEPS[i], version: i + 1 },
        prevHash: prev,
      };
      const hash = eventHash(o.key, e);
      // COPY text format: tab-separated, \N for NULL; nothing generated here needs escaping.
      lines += `${stream}\t${e.seq}\t${e.occurredAt.toISOString()}\t${e.actorId ?? '\\N'}\t${e.actorKind}\t${e.action}\t${e.outcome}\t${sessionId}\t${device}\t${viewer}\t\\N\t\\N\t${JSON.stringify(e.data)}\t${prev}\t${hash}\n`;
      prev = hash;
    }
    headLines += `${stream}\t${n}\t${prev}\n`;
    if (lines.length > 1 << 20) {
      await events.write(lines);
      lines = '';
      await heads.write(headLines);
      headLines = '';
    }
  }
  await events.write(lines);
  await heads.write(headLines);
  await Promise.all([events.end(), heads.end()]);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(err.stack ?? err);
    process.exit(1);
  });
}
