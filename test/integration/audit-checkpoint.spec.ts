import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import IORedis from 'ioredis';
import { DataSource } from 'typeorm';
import { createDataSource } from '../../libs/database/src';
import {
  AuditCheckpointStore,
  CHECKPOINT_PROBLEM_STREAM,
  VerifyOptions,
  appendAudit,
  parseCheckpoint,
  takeCheckpoint,
  verifyAudit,
} from '../../libs/audit/src';
import { RcflowConfig, loadConfig } from '../../libs/config/src';
import { AdvanceSessionHandler } from '../../libs/workflow/src/handlers/advance-session.handler';
import { AuditCheckpointer } from '../../libs/workflow/src/audit-checkpointer.service';
import { SessionTransitions } from '../../libs/sessions/src';
import { LoopbackAgentLink } from '../../libs/agent-link/src';
import { SHARED_REDIS_URL, TEST_AUDIT_KEY, freshDatabase, queuePrefix } from '../support/env';
import { requestSession, seedWorld } from '../support/fixtures';
import { runCli } from '../support/processes';

jest.setTimeout(90_000);

/** Checkpoints catch what the chain alone cannot: a tail removed with the head and the session's version rewritten to match. */
describe('audit checkpoints on PostgreSQL and Redis', () => {
  let ds: DataSource;
  let url: string;
  let dir: string;
  let config: RcflowConfig;
  let redis: IORedis;
  let store: AuditCheckpointStore;
  let sessions: string[];
  let n = 0;

  beforeEach(async () => {
    n++;
    url = await freshDatabase(`checkpoint${n}`);
    dir = await mkdtemp(join(tmpdir(), 'rcflow-checkpoints-'));
    config = loadConfig({
      DATABASE_URL: url,
      AUDIT_HMAC_KEY: TEST_AUDIT_KEY,
      REDIS_URL: SHARED_REDIS_URL,
      QUEUE_PREFIX: queuePrefix(`checkpoint${n}`),
      AUDIT_CHECKPOINT_DIR: dir,
      AUDIT_CHECKPOINT_INTERVAL_MS: '60000',
    });
    ds = createDataSource({ url, pgliteDir: '', poolSize: 4 });
    await ds.initialize();
    redis = new IORedis(SHARED_REDIS_URL);
    store = new AuditCheckpointStore({ ...config.audit.checkpoint, redis });
    const handler = new AdvanceSessionHandler(ds, new SessionTransitions(ds, config), new LoopbackAgentLink(config.agent.loopback), config);
    sessions = [];
    for (let i = 0; i < 3; i++) {
      const id = await requestSession(ds, await seedWorld(ds));
      await handler.handle(id, { final: true });
      sessions.push(id);
    }
    await ds.transaction((tx) =>
      appendAudit(tx, TEST_AUDIT_KEY, [
        { stream: 'device:x', actorId: null, actorKind: 'system', action: 'device.created', outcome: 'succeeded', data: { n: 1 } },
        { stream: 'device:x', actorId: null, actorKind: 'system', action: 'device.updated', outcome: 'succeeded', data: { n: 2 } },
      ]),
    );
  });
  afterEach(async () => {
    await redis.del(config.audit.checkpoint.redisKey);
    redis.disconnect();
    await ds.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  const WAYS: VerifyOptions[] = [{}, { partitions: 4, readers: 2 }, { mode: 'paged', pageSize: 2 }];
  /** Every way of reading the trail, against the newest checkpoint; they must agree. */
  const verify = async (withCheckpoint = true) => {
    const checkpoints = withCheckpoint ? await store.newest(TEST_AUDIT_KEY) : undefined;
    const [first, ...others] = await Promise.all(WAYS.map((o) => verifyAudit(ds, TEST_AUDIT_KEY, { ...o, checkpoints })));
    for (const other of others) expect(other).toEqual(first);
    return first;
  };
  const asOwner = (sql: string, params: unknown[] = []) =>
    ds.transaction(async (tx) => {
      await tx.query('SET LOCAL session_replication_role = replica');
      return tx.query(sql, params);
    });
  const take = async () => {
    const outcome = await takeCheckpoint(ds, TEST_AUDIT_KEY, store);
    if (!outcome.taken) throw new Error(`no checkpoint taken: ${outcome.reason}`);
    return outcome;
  };

  it('says when there is no checkpoint, without failing', async () => {
    const r = await verify();
    expect(r.ok).toBe(true);
    expect(r.checkpoint).toEqual({
      takenAt: null,
      source: null,
      streams: 0,
      note: 'no checkpoint found: the trail was checked by its chain alone',
    });
  });

  it('records every head in one snapshot, in the directory and Redis, and an intact trail passes against it', async () => {
    const { path, checkpoint } = await take();
    const heads: { stream: string; seq: number; hash: string }[] = await ds.query(
      `SELECT stream, seq, hash FROM audit_stream_heads ORDER BY stream`,
    );
    expect(heads.length).toBeGreaterThanOrEqual(4);
    expect(new Map(checkpoint.list.map(([s, q, h]) => [s, { q, h }]))).toEqual(
      new Map(heads.map((h) => [h.stream, { q: h.seq, h: h.hash }])),
    );
    expect(parseCheckpoint(TEST_AUDIT_KEY, await readFile(path))).toEqual(checkpoint);
    expect(parseCheckpoint(TEST_AUDIT_KEY, (await redis.getBuffer(config.audit.checkpoint.redisKey))!)).toEqual(checkpoint);
    const r = await verify();
    expect(r).toMatchObject({ ok: true, problems: [] });
    expect(r.checkpoint).toEqual({ takenAt: checkpoint.takenAt, source: path, streams: heads.length, note: null });
    // Events written after the checkpoint are fine: the trail only grows.
    await ds.transaction((tx) =>
      appendAudit(tx, TEST_AUDIT_KEY, [
        { stream: 'device:x', actorId: null, actorKind: 'system', action: 'device.updated', outcome: 'succeeded' },
      ]),
    );
    expect((await verify()).ok).toBe(true);
  });

  it('catches a session tail removed with its head and version rewritten, which the chain alone passes', async () => {
    const { checkpoint } = await take();
    const victim = sessions[1];
    const stream = `session:${victim}`;
    const [{ seq: length }] = await ds.query(`SELECT seq FROM audit_stream_heads WHERE stream = $1`, [stream]);
    expect(length).toBeGreaterThanOrEqual(3);
    // The database owner: drop the last two events, point the head at what is left, and set the version to match.
    await asOwner(`DELETE FROM audit_events WHERE stream = $1 AND seq > $2`, [stream, length - 2]);
    const [kept] = await ds.query(`SELECT seq, hash FROM audit_events WHERE stream = $1 ORDER BY seq DESC LIMIT 1`, [stream]);
    await ds.query(`UPDATE audit_stream_heads SET seq = $2, hash = $3 WHERE stream = $1`, [stream, kept.seq, kept.hash]);
    await ds.query(`UPDATE sessions SET version = $2 WHERE id = $1`, [victim, kept.seq]);

    expect((await verify(false)).problems).toEqual([]); // the chain alone is fooled
    const r = await verify();
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([
      {
        stream,
        seq: length,
        eventId: null,
        problem: `stream ends at seq ${length - 2} but the checkpoint of ${checkpoint.takenAt} recorded ${length}: its tail was removed`,
      },
    ]);
  });

  it('catches a stream deleted whole, and a head rewritten by a new history that chains correctly', async () => {
    const { checkpoint } = await take();
    const stream = `session:${sessions[0]}`;
    await asOwner(`DELETE FROM audit_events WHERE stream = $1`, [stream]);
    await ds.query(`DELETE FROM audit_stream_heads WHERE stream = $1`, [stream]);
    await asOwner(`DELETE FROM eligibility_decisions WHERE session_id = $1`, [sessions[0]]);
    await asOwner(`DELETE FROM sessions WHERE id = $1`, [sessions[0]]);
    // device:x: its second event removed, then a different second event appended by the application.
    await asOwner(`DELETE FROM audit_events WHERE stream = 'device:x' AND seq = 2`);
    const [first] = await ds.query(`SELECT seq, hash FROM audit_events WHERE stream = 'device:x' AND seq = 1`);
    await ds.query(`UPDATE audit_stream_heads SET seq = 1, hash = $1 WHERE stream = 'device:x'`, [first.hash]);
    await ds.transaction((tx) =>
      appendAudit(tx, TEST_AUDIT_KEY, [
        { stream: 'device:x', actorId: null, actorKind: 'system', action: 'device.updated', outcome: 'succeeded', data: { n: 'other' } },
      ]),
    );
    const [rewritten] = await ds.query(`SELECT id::text AS id FROM audit_events WHERE stream = 'device:x' AND seq = 2`);

    expect((await verify(false)).problems).toEqual([]);
    const r = await verify();
    expect(r.problems).toEqual(
      [
        {
          stream: 'device:x',
          seq: 2,
          eventId: rewritten.id,
          problem: `event differs from the one the checkpoint of ${checkpoint.takenAt} recorded at this seq: it was rewritten`,
        },
        {
          stream,
          seq: expect.any(Number),
          eventId: null,
          problem: `stream has no events but the checkpoint of ${checkpoint.takenAt} recorded ${checkpoint.list.find((h) => h[0] === stream)![1]}: the stream was deleted`,
        },
      ].sort((a, b) => (a.stream < b.stream ? -1 : 1)),
    );
  });

  it('reports an altered checkpoint file and checks against the Redis copy instead', async () => {
    const { path, checkpoint } = await take();
    const raw = JSON.parse(gunzipSync(await readFile(path)).toString('utf8'));
    raw.list[0][1] = 1;
    await writeFile(path, gzipSync(JSON.stringify(raw)));
    const r = await verify();
    expect(r.problems).toEqual([
      {
        stream: CHECKPOINT_PROBLEM_STREAM,
        seq: null,
        eventId: null,
        problem: `${path}: checkpoint heads do not match their signed digest: the list was altered`,
      },
    ]);
    expect(r.checkpoint).toMatchObject({ takenAt: checkpoint.takenAt, source: `redis:${config.audit.checkpoint.redisKey}` });
  });

  it('two checkpointers at once write one checkpoint', async () => {
    const a = new AuditCheckpointer(ds, config);
    const b = new AuditCheckpointer(ds, config);
    try {
      const outcomes = await Promise.all([a.tick(), b.tick()]);
      expect(outcomes.filter((o) => o?.taken)).toHaveLength(1);
      expect(outcomes.filter((o) => o && !o.taken)).toHaveLength(1);
      expect((await readdir(dir)).filter((f) => f.endsWith('.json.gz'))).toHaveLength(1);
      // The next round within half the interval leaves the fresh checkpoint alone.
      expect(await a.tick()).toEqual({ taken: false, reason: 'fresh' });
      expect(await readdir(dir)).toHaveLength(1);
    } finally {
      await Promise.all([a.onApplicationShutdown(), b.onApplicationShutdown()]);
    }
  });

  it('from the command line: takes a checkpoint, then exits 1 naming the truncated stream', async () => {
    const env = {
      DATABASE_URL: url,
      AUDIT_HMAC_KEY: TEST_AUDIT_KEY,
      REDIS_URL: SHARED_REDIS_URL,
      QUEUE_PREFIX: config.redis.prefix,
      AUDIT_CHECKPOINT_DIR: dir,
      LOG_LEVEL: 'warn',
    };
    const taken = await runCli(env, ['audit-checkpoint']);
    expect(taken.code).toBe(0);
    const [file] = await readdir(dir);
    expect(taken.output).toContain(join(dir, file));
    const stream = `session:${sessions[2]}`;
    const [{ seq }] = await ds.query(`SELECT seq FROM audit_stream_heads WHERE stream = $1`, [stream]);
    await asOwner(`DELETE FROM audit_events WHERE stream = $1 AND seq = $2`, [stream, seq]);
    const [kept] = await ds.query(`SELECT seq, hash FROM audit_events WHERE stream = $1 AND seq = $2`, [stream, seq - 1]);
    await ds.query(`UPDATE audit_stream_heads SET seq = $2, hash = $3 WHERE stream = $1`, [stream, kept.seq, kept.hash]);
    await ds.query(`UPDATE sessions SET version = $2 WHERE id = $1`, [sessions[2], kept.seq]);
    const bad = await runCli(env, ['verify-audit']);
    expect(bad.code).toBe(1);
    expect(bad.output).toContain('checked against the checkpoint of');
    expect(bad.output).toContain(`AUDIT TRAIL BROKEN: 1 problem(s), first: ${stream} seq ${seq}: stream ends at seq ${seq - 1}`);
  });
});
