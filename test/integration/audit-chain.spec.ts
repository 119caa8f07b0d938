import { DataSource } from 'typeorm';
import { createDataSource } from '../../libs/database/src';
import { VerifyOptions, appendAudit, verifyAudit } from '../../libs/audit/src';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TEST_AUDIT_KEY, freshDatabase, queuePrefix } from '../support/env';
import { runCli } from '../support/processes';
import { requestSession, seedWorld } from '../support/fixtures';
import { AdvanceSessionHandler } from '../../libs/workflow/src/handlers/advance-session.handler';
import { SessionTransitions } from '../../libs/sessions/src';
import { LoopbackAgentLink } from '../../libs/agent-link/src';
import { loadConfig } from '../../libs/config/src';

jest.setTimeout(60_000);

/** Append-only and tamper-evident: what the database refuses, and what verification catches. */
describe('audit trail on PostgreSQL', () => {
  let ds: DataSource;
  let url: string;

  beforeEach(async () => {
    url = await freshDatabase('audit');
    ds = createDataSource({ url, pgliteDir: '', poolSize: 4 });
    await ds.initialize();
    const config = loadConfig({ DATABASE_URL: url, AUDIT_HMAC_KEY: TEST_AUDIT_KEY });
    const handler = new AdvanceSessionHandler(ds, new SessionTransitions(ds, config), new LoopbackAgentLink(config.agent.loopback), config);
    for (let i = 0; i < 3; i++) {
      const id = await requestSession(ds, await seedWorld(ds));
      await handler.handle(id, { final: true });
    }
    await ds.transaction((tx) =>
      appendAudit(tx, TEST_AUDIT_KEY, [
        { stream: 'device:x', actorId: null, actorKind: 'system', action: 'device.created', outcome: 'succeeded', data: { n: 1 } },
        { stream: 'device:x', actorId: null, actorKind: 'system', action: 'device.updated', outcome: 'succeeded', data: { n: 2 } },
      ]),
    );
  });
  afterEach(async () => {
    await ds.destroy();
  });

  /**
   * The verifier's ways of reading the trail; each test checks all of them and that they agree:
   * COPY in one range, COPY split into ranges over parallel readers, and keyset pages (PGlite's
   * way) small enough that streams straddle pages.
   */
  const WAYS: VerifyOptions[] = [{}, { partitions: 4, readers: 2 }, { mode: 'paged', pageSize: 2 }];
  const verify = async (key = TEST_AUDIT_KEY) => {
    const [first, ...others] = await Promise.all(WAYS.map((o) => verifyAudit(ds, key, o)));
    for (const other of others) expect(other).toEqual(first);
    return first;
  };

  /** As a database owner could: bypassing the append-only triggers. */
  const asOwner = (sql: string, params: unknown[] = []) =>
    ds.transaction(async (tx) => {
      await tx.query('SET LOCAL session_replication_role = replica');
      return tx.query(sql, params);
    });

  it('chains two first events of a new stream written at once, one after the other', async () => {
    const entry = (n: number) => ({
      stream: 'ticket_integration:race',
      actorId: null,
      actorKind: 'system' as const,
      action: 'ticket_integration.updated',
      outcome: 'succeeded',
      data: { n },
    });
    // The first holds its transaction open after appending; the second appends meanwhile, to a
    // stream that has no head it can see yet.
    let appended!: () => void;
    const firstAppended = new Promise<void>((r) => (appended = r));
    const first = ds.transaction(async (tx) => {
      await appendAudit(tx, TEST_AUDIT_KEY, [entry(1)]);
      appended();
      await new Promise((r) => setTimeout(r, 300));
    });
    await firstAppended;
    await Promise.all([first, ds.transaction((tx) => appendAudit(tx, TEST_AUDIT_KEY, [entry(2)]))]);
    await ds.transaction((tx) => appendAudit(tx, TEST_AUDIT_KEY, [entry(3)]));
    const seqs = await ds.query(`SELECT seq FROM audit_events WHERE stream = 'ticket_integration:race' ORDER BY seq`);
    expect(seqs.map((r: { seq: number }) => r.seq)).toEqual([1, 2, 3]);
    expect((await verifyAudit(ds, TEST_AUDIT_KEY)).problems).toEqual([]);
  });

  it('verifies an untouched trail', async () => {
    const r = await verify();
    expect(r).toMatchObject({ ok: true, problems: [] });
    expect(r.eventsChecked).toBe(3 * 6 + 2);
  });

  it('refuses UPDATE, DELETE and TRUNCATE from the application', async () => {
    await expect(ds.query(`UPDATE audit_events SET outcome = 'x'`)).rejects.toThrow(/append-only/);
    await expect(ds.query(`DELETE FROM audit_events`)).rejects.toThrow(/append-only/);
    await expect(ds.query(`TRUNCATE audit_events`)).rejects.toThrow(/append-only/);
    expect((await verify()).ok).toBe(true);
  });

  it('detects an altered event and says which', async () => {
    const [victim] = await ds.query(`SELECT id, stream, seq FROM audit_events WHERE outcome = 'active' LIMIT 1`);
    await asOwner(`UPDATE audit_events SET data = data || '{"answeredBy":"nobody"}' WHERE id = $1`, [victim.id]);
    const r = await verify();
    expect(r.ok).toBe(false);
    expect(r.problems).toContainEqual(
      expect.objectContaining({
        stream: victim.stream,
        seq: victim.seq,
        eventId: String(victim.id),
        problem: expect.stringMatching(/altered/),
      }),
    );
  });

  it('detects a removed event in the middle of a stream', async () => {
    const [victim] = await ds.query(`SELECT id, stream FROM audit_events WHERE outcome = 'eligible' LIMIT 1`);
    await asOwner('DELETE FROM audit_events WHERE id = $1', [victim.id]);
    const r = await verify();
    expect(r.ok).toBe(false);
    expect(r.problems.some((p) => p.stream === victim.stream && /missing|removed/.test(p.problem))).toBe(true);
  });

  it('detects a removed tail even when the head is rewritten to match', async () => {
    const [tail] = await ds.query(`SELECT id, stream, seq FROM audit_events WHERE outcome = 'active' LIMIT 1`);
    const [prev] = await ds.query(`SELECT seq, hash FROM audit_events WHERE stream = $1 AND seq = $2`, [tail.stream, tail.seq - 1]);
    await asOwner('DELETE FROM audit_events WHERE id = $1', [tail.id]);
    await ds.query('UPDATE audit_stream_heads SET seq = $1, hash = $2 WHERE stream = $3', [prev.seq, prev.hash, tail.stream]);
    const r = await verify();
    expect(r.ok).toBe(false);
    expect(r.problems).toContainEqual(
      expect.objectContaining({ stream: tail.stream, problem: expect.stringMatching(/version 6 .* 5 events/) }),
    );
  });

  it('detects reordered events', async () => {
    const rows = await ds.query(`SELECT id, seq FROM audit_events WHERE stream = 'device:x' ORDER BY seq`);
    await asOwner(`UPDATE audit_events SET seq = -seq WHERE stream = 'device:x'`);
    await asOwner(`UPDATE audit_events SET seq = CASE id WHEN $1 THEN 2 ELSE 1 END WHERE stream = 'device:x'`, [rows[0].id]);
    const r = await verify();
    expect(r.ok).toBe(false);
    expect(r.problems.filter((p) => p.stream === 'device:x').length).toBeGreaterThan(0);
  });

  it('fails under another key: a forger without the key cannot rebuild the chain', async () => {
    const r = await verify('another-key-of-sufficient-length-0000000000');
    expect(r.ok).toBe(false);
    expect(r.problems.length).toBeGreaterThan(0);
  });

  it('detects a stream whose head is gone and a head whose events are all gone', async () => {
    const [session] = await ds.query(`SELECT stream, seq FROM audit_stream_heads WHERE stream LIKE 'session:%' LIMIT 1`);
    await ds.query('DELETE FROM audit_stream_heads WHERE stream = $1', [session.stream]);
    await asOwner(`DELETE FROM audit_events WHERE stream = 'device:x'`);
    const r = await verify();
    expect(r.ok).toBe(false);
    expect(r.problems).toContainEqual({
      stream: session.stream,
      seq: session.seq,
      eventId: null,
      problem: 'stream has events but no head',
    });
    expect(r.problems).toContainEqual({
      stream: 'device:x',
      seq: 2,
      eventId: null,
      problem: 'stream has a head but no events: events were removed',
    });
  });

  it('detects a head that records another event than the last', async () => {
    await ds.query(`UPDATE audit_stream_heads SET seq = 3 WHERE stream = 'device:x'`);
    const r = await verify();
    expect(r.problems).toEqual([
      {
        stream: 'device:x',
        seq: 2,
        eventId: null,
        problem: 'last event is seq 2 but the head records seq 3: events were removed or added',
      },
    ]);
  });

  it('reports at most maxProblems, the first in stream order, the same in every way', async () => {
    const r = await verify('another-key-of-sufficient-length-0000000000');
    const capped = await Promise.all(
      WAYS.map((o) => verifyAudit(ds, 'another-key-of-sufficient-length-0000000000', { ...o, maxProblems: 5 })),
    );
    for (const c of capped) expect(c.problems).toEqual(r.problems.slice(0, 5));
    expect(r.problems.length).toBe(r.eventsChecked);
  });

  it('verifies from the command line with readers in worker threads, and says where it breaks', async () => {
    // A directory and Redis key of its own: no checkpoint of another database is found.
    const env = {
      DATABASE_URL: url,
      AUDIT_HMAC_KEY: TEST_AUDIT_KEY,
      LOG_LEVEL: 'warn',
      AUDIT_CHECKPOINT_DIR: join(tmpdir(), `rcflow-no-checkpoints-${process.pid}`),
      QUEUE_PREFIX: queuePrefix('audit_chain_cli'),
    };
    const args = ['verify-audit', '--readers', '2', '--partitions', '3'];
    const ok = await runCli(env, args);
    expect(ok.code).toBe(0);
    expect(ok.output).toContain(`audit trail verifies: ${3 * 6 + 2} events`);
    const [victim] = await ds.query(`SELECT id, stream, seq FROM audit_events WHERE outcome = 'eligible' ORDER BY stream DESC LIMIT 1`);
    await asOwner(`UPDATE audit_events SET outcome = 'ineligible' WHERE id = $1`, [victim.id]);
    const bad = await runCli(env, args);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.output.slice(bad.output.indexOf('{'), bad.output.lastIndexOf('}') + 1)).problems).toEqual([
      {
        stream: victim.stream,
        seq: victim.seq,
        eventId: String(victim.id),
        problem: 'hash does not match the stored content: the event was altered',
      },
    ]);
    expect((await runCli(env, ['verify-audit', '--readers', '0'])).output).toContain('--readers needs a whole number from 1 to 64');
  });
});
