import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { createDataSource } from '../../libs/database/src';
import { AuditEntry, CopyRow, appendAudit, copyOut, eventHash, verifyAudit } from '../../libs/audit/src';
import { AuditCopyCheck, chunkQuery } from '../../libs/audit/src/audit-copy-check';
import { canonicalJson } from '../../libs/domain/src';
import { TEST_AUDIT_KEY, freshDatabase } from '../support/env';

/**
 * The COPY verifier rebuilds eventHash's canonical JSON byte for byte from PostgreSQL's text
 * output instead of from parsed rows. These events hold what could make the two differ: escapes,
 * control characters, text beyond ASCII, nested and non-integer data, keys whose code-unit order
 * differs from PostgreSQL's, years JavaScript writes differently.
 */
const TRICKY: { entry: Omit<AuditEntry, 'stream' | 'actorKind' | 'actorId'>; at?: string }[] = [
  { entry: { action: 'plain', outcome: 'ok', data: { type: 'remote-control', access: 'full', version: 1 } } },
  { entry: { action: 'quotes', outcome: 'say "hi"', reason: 'back\\slash and "quotes"', data: { q: 'a "quoted" \\ value' } } },
  {
    entry: {
      action: 'control',
      outcome: 'tab\there',
      reason: 'line\nbreak\r\n\u0001\u001f\u007f',
      ticketRef: 'T\t1',
      data: { nl: 'a\nb', t: '\t' },
    },
  },
  { entry: { action: 'unicode', outcome: 'é中文😀', reason: '\u2028\u2029', data: { é: 1, z: 'ü', Ω: ['😀'] } } },
  { entry: { action: 'null-marker', outcome: '\\N', reason: 'N', ticketRef: '\\', data: { n: '\\N' } } },
  {
    entry: {
      action: 'numbers',
      outcome: 'ok',
      data: {
        f: 1.5,
        big: 12345678901234567168,
        neg: -42,
        zero: 0,
        negZero: -0,
        exp: 1e21,
        tiny: 1e-7,
        max: 999999999999999,
        sixteen: 1234567890123456,
      },
    },
  },
  {
    entry: {
      action: 'key-order',
      outcome: 'ok',
      data: { b: 1, B: 2, _: 3, a: 4, '10': 5, '9': 6, aa: 7, 'a-b': 8, A: true, c: false, d: null },
    },
  },
  { entry: { action: 'nested', outcome: 'ok', data: { list: [3, 1, { z: 1, y: [] }], obj: { b: { d: 1, c: 2 }, a: {} }, s: '' } } },
  { entry: { action: 'empty', outcome: 'ok', data: {} } },
  { entry: { action: 'far-future', outcome: 'ok', data: {} }, at: '+010000-01-01T12:00:00.123Z' },
  { entry: { action: 'before-common-era', outcome: 'ok', data: {} }, at: '-000044-03-15T00:00:00.000Z' },
  { entry: { action: 'epoch', outcome: 'ok', data: {} }, at: '1970-01-01T00:00:00.000Z' },
];

jest.setTimeout(60_000);

describe('audit verification of unusual content (PostgreSQL)', () => {
  let ds: DataSource;
  let url: string;

  beforeAll(async () => {
    url = await freshDatabase('audit_verify');
    ds = createDataSource({ url, pgliteDir: '', poolSize: 4 });
    await ds.initialize();
    for (const [i, t] of TRICKY.entries()) {
      const entry: AuditEntry = { stream: `tricky:${String(i).padStart(2, '0')}`, actorId: null, actorKind: 'system', ...t.entry };
      // Two events per stream, so the second links to the first.
      await ds.transaction((tx) =>
        appendAudit(tx, TEST_AUDIT_KEY, [entry, { ...entry, action: `${entry.action}.again` }], t.at ? new Date(t.at) : undefined),
      );
    }
  });
  afterAll(async () => {
    await ds.destroy();
  });

  const asOwner = (sql: string, params: unknown[] = []) =>
    ds.transaction(async (tx) => {
      await tx.query('SET LOCAL session_replication_role = replica');
      return tx.query(sql, params);
    });

  it('rebuilds the canonical JSON eventHash covers, byte for byte, from COPY rows', async () => {
    const stored: Record<string, unknown>[] = await ds.query(`SELECT * FROM audit_events ORDER BY stream, seq`);
    const client = new Client({ connectionString: url });
    await client.connect();
    const check = new AuditCopyCheck(TEST_AUDIT_KEY);
    const bodies: string[] = [];
    const row = new CopyRow();
    try {
      await copyOut(client, chunkQuery({ from: null, to: null }), (line) => {
        row.parse(line);
        bodies.push(check.body(row)!.toString('utf8'));
        expect(check.hashMatches(row)).toBe(true);
      }).done;
    } finally {
      await client.end();
    }
    const expected = stored.map((r) =>
      canonicalJson([
        r.prev_hash,
        r.stream,
        r.seq,
        (r.occurred_at as Date).toISOString(),
        r.actor_id,
        r.actor_kind,
        r.action,
        r.outcome,
        r.session_id,
        r.device_id,
        r.viewer_id,
        r.ticket_ref,
        r.reason,
        r.data,
      ]),
    );
    expect(bodies).toEqual(expected);
    expect(bodies).toHaveLength(TRICKY.length * 2);
  });

  it('verifies every way, and catches a change in any of these events', async () => {
    const ways = [{}, { partitions: 5, readers: 3 }, { mode: 'paged' as const, pageSize: 3 }];
    for (const way of ways)
      expect(await verifyAudit(ds, TEST_AUDIT_KEY, way)).toMatchObject({
        ok: true,
        eventsChecked: TRICKY.length * 2,
        streamsChecked: TRICKY.length,
      });
    const changes = [
      `reason = coalesce(reason, '') || ' '`,
      `data = data || '{"extra": 1}'`,
      `outcome = upper(outcome)`,
      `occurred_at = occurred_at + interval '1 millisecond'`,
      `occurred_at = 'infinity'`,
      `ticket_ref = coalesce(ticket_ref, '') || 'x'`,
    ];
    for (const [n, change] of changes.entries()) {
      const stream = `tricky:${String((n * 5) % TRICKY.length).padStart(2, '0')}`;
      const [victim] = await ds.query(`SELECT id FROM audit_events WHERE stream = $1 AND seq = 2`, [stream]);
      const [before] = await ds.query(`SELECT * FROM audit_events WHERE id = $1`, [victim.id]);
      await asOwner(`UPDATE audit_events SET ${change} WHERE id = $1`, [victim.id]);
      for (const way of ways) {
        const r = await verifyAudit(ds, TEST_AUDIT_KEY, way);
        expect({ change, way, problems: r.problems }).toEqual({
          change,
          way,
          problems: [
            { stream, seq: 2, eventId: String(victim.id), problem: 'hash does not match the stored content: the event was altered' },
          ],
        });
      }
      await asOwner(`UPDATE audit_events SET reason = $2, data = $3, outcome = $4, occurred_at = $5, ticket_ref = $6 WHERE id = $1`, [
        victim.id,
        before.reason,
        JSON.stringify(before.data),
        before.outcome,
        before.occurred_at,
        before.ticket_ref,
      ]);
      expect((await verifyAudit(ds, TEST_AUDIT_KEY)).ok).toBe(true);
    }
  });

  it('catches a correctly signed event spliced in with a prev_hash that is not its predecessor, with the head rewritten to match', async () => {
    const ways = [{}, { partitions: 5, readers: 3 }, { mode: 'paged' as const, pageSize: 3 }];
    // As a restored copy would hold it: signed with the key, seq and head consistent, but chained
    // to another history (here: another stream's event, then the genesis hash).
    const [other] = await ds.query(`SELECT hash FROM audit_events WHERE stream = 'tricky:03' AND seq = 1`);
    for (const [stream, prevHash] of [
      ['tricky:01', other.hash],
      ['tricky:07', '0'.repeat(64)],
    ] as const) {
      const [row] = await ds.query(`SELECT * FROM audit_events WHERE stream = $1 AND seq = 2`, [stream]);
      const [head] = await ds.query(`SELECT seq, hash FROM audit_stream_heads WHERE stream = $1`, [stream]);
      const spliced = eventHash(TEST_AUDIT_KEY, {
        stream: row.stream,
        seq: row.seq,
        occurredAt: row.occurred_at,
        actorId: row.actor_id,
        actorKind: row.actor_kind,
        action: row.action,
        outcome: row.outcome,
        sessionId: row.session_id,
        deviceId: row.device_id,
        viewerId: row.viewer_id,
        ticketRef: row.ticket_ref,
        reason: row.reason,
        data: row.data,
        prevHash,
      });
      await asOwner(`UPDATE audit_events SET prev_hash = $2, hash = $3 WHERE id = $1`, [row.id, prevHash, spliced]);
      await ds.query(`UPDATE audit_stream_heads SET hash = $2 WHERE stream = $1`, [stream, spliced]);
      for (const way of ways) {
        const r = await verifyAudit(ds, TEST_AUDIT_KEY, way);
        expect({ stream, way, problems: r.problems }).toEqual({
          stream,
          way,
          problems: [
            {
              stream,
              seq: 2,
              eventId: String(row.id),
              problem: 'prev_hash does not match the previous event: an event was removed, inserted or reordered',
            },
          ],
        });
      }
      await asOwner(`UPDATE audit_events SET prev_hash = $2, hash = $3 WHERE id = $1`, [row.id, row.prev_hash, row.hash]);
      await ds.query(`UPDATE audit_stream_heads SET hash = $2 WHERE stream = $1`, [stream, head.hash]);
      expect((await verifyAudit(ds, TEST_AUDIT_KEY)).ok).toBe(true);
    }
  });

  it('agrees with eventHash about what the writer stored for far-off years', async () => {
    const [row] = await ds.query(`SELECT * FROM audit_events WHERE action = 'far-future'`);
    expect((row.occurred_at as Date).toISOString()).toBe('+010000-01-01T12:00:00.123Z');
    expect(
      eventHash(TEST_AUDIT_KEY, {
        stream: row.stream,
        seq: row.seq,
        occurredAt: row.occurred_at,
        actorId: row.actor_id,
        actorKind: row.actor_kind,
        action: row.action,
        outcome: row.outcome,
        sessionId: row.session_id,
        deviceId: row.device_id,
        viewerId: row.viewer_id,
        ticketRef: row.ticket_ref,
        reason: row.reason,
        data: row.data,
        prevHash: row.prev_hash,
      }),
    ).toBe(row.hash);
  });
});
