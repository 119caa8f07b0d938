import fc from 'fast-check';
import { DataSource } from 'typeorm';
import { createDataSource } from '../../libs/database/src';
import { AuditEntry, VerifyOptions, appendAudit, eventHash, verifyAudit } from '../../libs/audit/src';
import { canonicalJson, textProblem } from '../../libs/domain/src';
import { TEST_AUDIT_KEY, freshDatabase } from '../support/env';

jest.setTimeout(120_000);

/**
 * The audit hash covers exactly what PostgreSQL stores: events with awkward but storable text and
 * data are written, read back field by field (equal to what was given), re-hashed from what was
 * read, and verified by every way the verifier reads the trail (COPY text, split COPY, pages).
 */
describe('audit events round-trip through PostgreSQL', () => {
  let ds: DataSource;
  let n = 0;

  beforeAll(async () => {
    ds = createDataSource({ url: await freshDatabase('audit_rt'), pgliteDir: '', poolSize: 4 });
    await ds.initialize();
  });
  afterAll(async () => {
    await ds.destroy();
  });

  const WAYS: VerifyOptions[] = [{}, { partitions: 4, readers: 2 }, { mode: 'paged', pageSize: 3 }];

  /** Appends the entries on a stream of their own, reads them back and checks stored = given = hashed. */
  const roundTrip = async (entries: Omit<AuditEntry, 'stream' | 'actorId' | 'actorKind'>[]) => {
    const stream = `device:rt-${++n}`;
    const full: AuditEntry[] = entries.map((e) => ({ stream, actorId: null, actorKind: 'system', ...e }));
    await ds.transaction((tx) => appendAudit(tx, TEST_AUDIT_KEY, full));
    const rows: Record<string, any>[] = await ds.query(
      `SELECT stream, seq, occurred_at, actor_id, actor_kind, action, outcome, session_id, device_id, viewer_id, ticket_ref, reason, data,
              prev_hash, hash FROM audit_events WHERE stream = $1 ORDER BY seq`,
      [stream],
    );
    expect(rows).toHaveLength(full.length);
    rows.forEach((r, i) => {
      const given = full[i];
      expect({ reason: r.reason, ticketRef: r.ticket_ref, action: r.action, outcome: r.outcome }).toEqual({
        reason: given.reason ?? null,
        ticketRef: given.ticketRef ?? null,
        action: given.action,
        outcome: given.outcome,
      });
      expect(canonicalJson(r.data)).toBe(canonicalJson(given.data ?? {}));
      const rehashed = eventHash(TEST_AUDIT_KEY, {
        stream: r.stream,
        seq: r.seq,
        occurredAt: r.occurred_at,
        actorId: r.actor_id,
        actorKind: r.actor_kind,
        action: r.action,
        outcome: r.outcome,
        sessionId: r.session_id,
        deviceId: r.device_id,
        viewerId: r.viewer_id,
        ticketRef: r.ticket_ref,
        reason: r.reason,
        data: r.data,
        prevHash: r.prev_hash,
      });
      expect(rehashed).toBe(r.hash);
    });
  };

  const verifyEveryWay = async () => {
    for (const way of WAYS) expect(await verifyAudit(ds, TEST_AUDIT_KEY, way)).toMatchObject({ ok: true, problems: [] });
  };

  it('keeps emoji, combining marks, right-to-left text, separators, escapes and maximum lengths exactly', async () => {
    const awkward = [
      'thumbs 👍🏽 family 👨‍👩‍👧‍👦 flag 🇺🇦',
      'e\u0301 a\u0308\u0323 Z\u0335\u0321\u031b',
      'שלום עליכם — مرحبا بالعالم \u200f\u202eevil\u202c',
      'line\u2028separator\u2029paragraph',
      'tab\tnewline\ncr\rbackslash\\ \\N \\. quote" \u0001\u001f\u007f',
      '\ufeffBOM \ufffd replacement \uffff non-character',
      '𝕏'.repeat(500), // 1000 UTF-16 units: the longest reason a caller may send
      'x'.repeat(1000),
    ];
    await roundTrip(
      awkward.map((text, i) => ({
        action: 'device.updated',
        outcome: 'succeeded',
        reason: text,
        ticketRef: text.slice(0, 200),
        data: {
          text,
          [text.slice(0, 50)]: i,
          nested: [{ '': text }, [text, null, true]],
          numbers: [0, -0, 0.1, 0.30000000000000004, 1e21, 1.5e-7, 5e-324, 1.7976931348623157e308, 2 ** 53 - 1, -12345.678],
          literalEscape: '\\u0000 \\ud800',
        },
      })),
    );
    await verifyEveryWay();
  });

  it('keeps any storable text and any JSON data exactly (property)', async () => {
    const storable = fc.string({ unit: 'binary', maxLength: 200 }).filter((s) => textProblem(s) === null);
    const storableJson = fc
      .jsonValue({ maxDepth: 4 })
      .filter((v) => !JSON.stringify(v).includes('\\u0000') && textProblem(JSON.stringify(v)) === null);
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            reason: fc.option(storable),
            ticketRef: fc.option(storable),
            data: fc.dictionary(storable, storableJson, { maxKeys: 5 }),
          }),
          {
            minLength: 1,
            maxLength: 4,
          },
        ),
        async (events) => {
          await roundTrip(events.map((e) => ({ action: 'device.updated', outcome: 'succeeded', ...e })));
        },
      ),
      { numRuns: 60 },
    );
    await verifyEveryWay();
  });

  it('refuses to chain an event whose text PostgreSQL would store differently from what was hashed', async () => {
    for (const bad of [{ reason: 'x\ud800' }, { ticketRef: 'a\u0000' }, { data: { k: ['\udc00'] } }, { data: { 'k\ud800': 1 } }]) {
      await expect(
        ds.transaction((tx) =>
          appendAudit(tx, TEST_AUDIT_KEY, [
            { stream: 'device:bad', actorId: null, actorKind: 'system', action: 'device.updated', outcome: 'succeeded', ...bad },
          ]),
        ),
      ).rejects.toThrow(/NUL|surrogate/);
    }
    expect(await ds.query(`SELECT 1 FROM audit_events WHERE stream = 'device:bad'`)).toEqual([]);
    await verifyEveryWay();
  });
});
