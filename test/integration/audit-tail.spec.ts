import type { DataSource, QueryRunner } from 'typeorm';
import { createDataSource } from '../../libs/database/src';
import { AuditTail, appendAudit } from '../../libs/audit/src';
import { TEST_AUDIT_KEY, freshDatabase } from '../support/env';

jest.setTimeout(120_000);

const entry = (stream: string, n: number) => ({
  stream,
  actorId: null,
  actorKind: 'system' as const,
  action: 'device.updated',
  outcome: 'succeeded',
  data: { n },
});

/** A writer holding its transaction open after appending one event; answers the id it drew. */
async function openWriter(ds: DataSource, stream: string): Promise<{ qr: QueryRunner; id: string }> {
  const qr = ds.createQueryRunner();
  await qr.connect();
  await qr.startTransaction();
  await appendAudit(qr.manager, TEST_AUDIT_KEY, [entry(stream, 1)]);
  const [row] = await qr.query(`SELECT currval('audit_events_id_seq')::text AS id`);
  return { qr, id: row.id };
}

async function commitOne(ds: DataSource, stream: string): Promise<string> {
  return ds.transaction(async (tx) => {
    await appendAudit(tx, TEST_AUDIT_KEY, [entry(stream, 1)]);
    const [row] = await tx.query(`SELECT currval('audit_events_id_seq')::text AS id`);
    return row.id as string;
  });
}

/**
 * Polls until `count` ids came; bounded in polls, not in time (other writers on the cluster may
 * hold a gap open a while, which delays and never reorders).
 */
async function collect(tail: AuditTail, count: number, got: string[] = []): Promise<string[]> {
  for (let i = 0; i < 2_000 && got.length < count; i++) {
    const page = await tail.next();
    got.push(...page.rows.map((r) => r.tail_id));
    if (got.length < count && !page.more) await new Promise((r) => setTimeout(r, 10));
  }
  return got;
}

describe('audit tail on PostgreSQL', () => {
  let ds: DataSource;

  beforeAll(async () => {
    ds = createDataSource({ url: await freshDatabase('audit_tail'), pgliteDir: '', poolSize: 6 });
    await ds.initialize();
  });
  afterAll(async () => {
    if (ds?.isInitialized) await ds.destroy();
  });

  const head = async () => (await ds.query('SELECT coalesce(max(id), 0)::text AS id FROM audit_events'))[0].id as string;

  it('never hands out a higher id before a lower one that commits later', async () => {
    const tail = AuditTail.after(ds, await head());
    const low = await openWriter(ds, 'device:low');
    const high = await commitOne(ds, 'device:high');
    expect(BigInt(high)).toBeGreaterThan(BigInt(low.id));
    // The higher id is committed and visible; the lower one's writer is still open: nothing yet.
    for (let i = 0; i < 5; i++) {
      const page = await tail.next();
      expect(page.rows).toEqual([]);
      expect(BigInt(page.through)).toBeLessThan(BigInt(low.id));
    }
    await low.qr.commitTransaction();
    await low.qr.release();
    expect(await collect(tail, 2)).toEqual([low.id, high]);
    expect(tail.through).toBe(high);
  });

  it('skips an id rolled back once its writer has ended, and not before', async () => {
    const tail = AuditTail.after(ds, await head());
    const doomed = await openWriter(ds, 'device:doomed');
    const kept = await commitOne(ds, 'device:kept');
    for (let i = 0; i < 5; i++) expect((await tail.next()).rows).toEqual([]);
    await doomed.qr.rollbackTransaction();
    await doomed.qr.release();
    expect(await collect(tail, 1)).toEqual([kept]);
    expect(tail.through).toBe(kept);
    // The skipped id never shows up later, and the next event follows.
    const after = await commitOne(ds, 'device:kept');
    expect(await collect(tail, 1)).toEqual([after]);
  });

  it('hands out a run of events in order across pages, from any id', async () => {
    const start = await head();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push(await commitOne(ds, `device:run${i % 3}`));
    expect(await collect(AuditTail.after(ds, start, { pageSize: 3 }), 7)).toEqual(ids);
    expect(await collect(AuditTail.after(ds, ids[3], { pageSize: 2 }), 3)).toEqual(ids.slice(4));
  });

  it('orders interleaved concurrent writers exactly, with rollbacks among them', async () => {
    const tail = AuditTail.after(ds, await head(), { pageSize: 4 });
    const committed: string[] = [];
    const got: string[] = [];
    for (let round = 0; round < 4; round++) {
      const writers = await Promise.all([0, 1, 2].map((w) => openWriter(ds, `device:w${round}-${w}`)));
      const extra = await commitOne(ds, `device:x${round}`);
      committed.push(extra);
      // End them in reverse order of their ids, one rolled back; the tail reads in between.
      for (const [i, w] of [...writers].reverse().entries()) {
        if (i === 1) await w.qr.rollbackTransaction();
        else {
          await w.qr.commitTransaction();
          committed.push(w.id);
        }
        await w.qr.release();
        got.push(...(await tail.next()).rows.map((r) => r.tail_id));
      }
    }
    const expected = committed.sort((a, b) => Number(BigInt(a) - BigInt(b)));
    expect(await collect(tail, expected.length, got)).toEqual(expected);
  });

  it('starting at the head, is settled only once the writers running at the start have ended', async () => {
    const early = await openWriter(ds, 'device:early');
    const before = await commitOne(ds, 'device:before');
    const tail = await AuditTail.atHead(ds);
    expect(tail.through).toBe(before);
    await tail.next();
    expect(tail.settled).toBe(false);
    await early.qr.commitTransaction();
    await early.qr.release();
    const next = await commitOne(ds, 'device:next');
    // The early event counts as before the start: only the next one comes.
    expect(await collect(tail, 1)).toEqual([next]);
    expect(tail.settled).toBe(true);
  });

  it('draws an id only after the writing transaction has an xid', async () => {
    await ds.transaction(async (tx) => {
      expect((await tx.query('SELECT pg_current_xact_id_if_assigned() AS x'))[0].x).toBeNull();
      await tx.query('SELECT rcflow_audit_next_id()');
      expect((await tx.query('SELECT pg_current_xact_id_if_assigned() AS x'))[0].x).not.toBeNull();
    });
  });
});

describe('audit tail on PGlite', () => {
  let ds: DataSource;

  beforeAll(async () => {
    ds = createDataSource({ url: null, pgliteDir: 'memory', poolSize: 1 });
    await ds.initialize();
    await ds.runMigrations({ transaction: 'each' });
  });
  afterAll(async () => {
    if (ds?.isInitialized) await ds.destroy();
  });

  it('hands out events in order and skips a rolled-back id', async () => {
    const tail = await AuditTail.atHead(ds);
    const first = await commitOne(ds, 'device:a');
    await ds
      .transaction(async (tx) => {
        await appendAudit(tx, TEST_AUDIT_KEY, [entry('device:b', 1)]);
        throw new Error('roll back');
      })
      .catch(() => undefined);
    const last = await commitOne(ds, 'device:c');
    expect(BigInt(last) - BigInt(first)).toBe(2n);
    expect(await collect(tail, 2)).toEqual([first, last]);
    expect(tail.through).toBe(last);
    expect(tail.settled).toBe(true);
  });
});
