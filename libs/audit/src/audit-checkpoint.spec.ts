import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { AuditCheckpoint, CheckpointError, CheckpointHead, parseCheckpoint, serialiseCheckpoint, signCheckpoint } from './audit-checkpoint';
import { AuditCheckpointStore, CheckpointRedis, checkpointFileName } from './audit-checkpoint-store';

const KEY = 'checkpoint-test-key-0123456789abcdef0123456789';
const h = (c: string) => c.repeat(64);
const HEADS: CheckpointHead[] = [
  ['session:b', 3, h('b')],
  ['device:a', 1, h('a')],
  ['session:a', 12, h('c')],
];
const AT = new Date('2026-11-29T10:15:00.123Z');

/** Re-gzips the stored JSON after `change`, as someone editing the file would. */
function edited(cp: AuditCheckpoint, change: (raw: Record<string, unknown> & AuditCheckpoint) => void): Buffer {
  const raw = JSON.parse(gunzipSync(serialiseCheckpoint(cp)).toString('utf8'));
  change(raw);
  return gzipSync(JSON.stringify(raw));
}

describe('checkpoint signing and serialisation', () => {
  const cp = signCheckpoint(KEY, HEADS, AT);

  it('sorts the heads by stream, counts them and digests them line by line', () => {
    expect(cp.list.map((x) => x[0])).toEqual(['device:a', 'session:a', 'session:b']);
    expect(cp).toMatchObject({ version: 1, alg: 'hmac-sha256', takenAt: '2026-11-29T10:15:00.123Z', streams: 3 });
    const lines = cp.list.map((x) => `${JSON.stringify(x)}\n`).join('');
    expect(cp.heads).toBe(createHash('sha256').update(lines).digest('hex'));
    expect(cp.signature).toMatch(/^[0-9a-f]{64}$/);
  });

  it('round-trips through the stored bytes', () => {
    expect(parseCheckpoint(KEY, serialiseCheckpoint(cp))).toEqual(cp);
    const empty = signCheckpoint(KEY, [], AT);
    expect(parseCheckpoint(KEY, serialiseCheckpoint(empty))).toEqual(empty);
  });

  const tamperings: [string, (raw: Record<string, unknown> & AuditCheckpoint) => void, RegExp][] = [
    ['a head lowered (a tail hidden), digest kept', (r) => (r.list[1][1] = 11), /do not match their signed digest/],
    [
      'a head rewritten and the digest recomputed',
      (r) => {
        r.list[2][2] = h('d');
        r.heads = createHash('sha256')
          .update(r.list.map((x) => `${JSON.stringify(x)}\n`).join(''))
          .digest('hex');
      },
      /signature does not match/,
    ],
    [
      'a stream dropped, count and digest recomputed',
      (r) => {
        r.list.splice(0, 1);
        r.streams = 2;
        r.heads = createHash('sha256')
          .update(r.list.map((x) => `${JSON.stringify(x)}\n`).join(''))
          .digest('hex');
      },
      /signature does not match/,
    ],
    ['a stream dropped, count kept', (r) => r.list.splice(0, 1), /as many heads/],
    ['the time moved', (r) => (r.takenAt = '2026-11-30T10:15:00.123Z'), /signature does not match/],
    ['the list reordered', (r) => r.list.reverse(), /not sorted/],
    ['a duplicate stream', (r) => (r.list[1][0] = 'device:a'), /not sorted/],
    ['a malformed head', (r) => ((r.list[0] as unknown[])[1] = '1'), /malformed head/],
    ['an unknown algorithm', (r) => ((r as Record<string, unknown>).alg = 'none'), /unknown algorithm/],
    ['no signature', (r) => ((r as Record<string, unknown>).signature = undefined), /digest or signature/],
    ['another version', (r) => ((r as Record<string, unknown>).version = 2), /unknown version/],
  ];
  it.each(tamperings)('refuses a checkpoint with %s', (_what, change, message) => {
    expect(() => parseCheckpoint(KEY, edited(cp, change))).toThrow(message);
  });

  it('refuses a checkpoint signed under another key, and bytes that are not one', () => {
    expect(() => parseCheckpoint(`${KEY}x`, serialiseCheckpoint(cp))).toThrow(/signature does not match/);
    expect(() => parseCheckpoint(KEY, Buffer.from('{"version":1}'))).toThrow(CheckpointError);
    expect(() => parseCheckpoint(KEY, gzipSync('null'))).toThrow(CheckpointError);
  });
});

describe('AuditCheckpointStore', () => {
  let dir: string;
  let kept: Map<string, Buffer>;
  let redis: CheckpointRedis;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rcflow-cp-'));
    kept = new Map();
    redis = {
      getBuffer: async (k) => kept.get(k) ?? null,
      set: async (k, v) => kept.set(k, v),
    };
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));
  const at = (minute: number) => new Date(Date.UTC(2026, 10, 29, 10, minute));

  it('writes files named by time, keeps the last N, puts the newest in Redis, and finds it', async () => {
    const store = new AuditCheckpointStore({ dir, keep: 2, redis, redisKey: 'p:audit:checkpoint' });
    for (const m of [1, 2, 3]) await store.save(signCheckpoint(KEY, HEADS, at(m)));
    expect(await readdir(dir)).toEqual([checkpointFileName(at(2).toISOString()), checkpointFileName(at(3).toISOString())]);
    expect(parseCheckpoint(KEY, kept.get('p:audit:checkpoint')!).takenAt).toBe(at(3).toISOString());
    const newest = await store.newest(KEY);
    expect(newest.invalid).toEqual([]);
    expect(newest.found?.checkpoint.takenAt).toBe(at(3).toISOString());
    // Equal times: the directory's copy is named.
    expect(newest.found?.source).toBe(join(dir, checkpointFileName(at(3).toISOString())));
  });

  it('uses Redis when the directory has none, and the later of the two when both have one', async () => {
    const store = new AuditCheckpointStore({ dir, keep: 5, redis, redisKey: 'k' });
    expect(await store.newest(KEY)).toEqual({ found: null, invalid: [], notes: [] });
    kept.set('k', serialiseCheckpoint(signCheckpoint(KEY, HEADS, at(5))));
    expect((await store.newest(KEY)).found).toMatchObject({ source: 'redis:k', checkpoint: { takenAt: at(5).toISOString() } });
    const dirOnly = new AuditCheckpointStore({ dir, keep: 5, redis: null, redisKey: 'k' });
    await dirOnly.save(signCheckpoint(KEY, HEADS, at(9)));
    expect((await store.newest(KEY)).found?.source).toBe(join(dir, checkpointFileName(at(9).toISOString())));
  });

  it('reports a tampered newest file instead of skipping it, and still uses a valid Redis copy', async () => {
    const store = new AuditCheckpointStore({ dir, keep: 5, redis, redisKey: 'k' });
    const path = await store.save(signCheckpoint(KEY, HEADS, at(7)));
    await writeFile(
      path,
      edited(parseCheckpoint(KEY, await readFile(path)), (r) => (r.list[0][1] = 9)),
    );
    const newest = await store.newest(KEY);
    expect(newest.invalid).toEqual([{ source: path, problem: 'checkpoint heads do not match their signed digest: the list was altered' }]);
    expect(newest.found?.source).toBe('redis:k');
  });

  it('notes an unreachable Redis without failing', async () => {
    const down: CheckpointRedis = { getBuffer: () => Promise.reject(new Error('Connection is closed.')), set: () => Promise.resolve() };
    const store = new AuditCheckpointStore({ dir, keep: 5, redis: down, redisKey: 'k' });
    expect(await store.newest(KEY)).toEqual({ found: null, invalid: [], notes: ['Redis copy not read: Connection is closed.'] });
  });
});
