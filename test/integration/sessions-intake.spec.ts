import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { loadConfig, RcflowConfig } from '../../libs/config/src';
import { createDataSource, enablePreparedStatements, loadPrincipalFacts } from '../../libs/database/src';
import { verifyAudit } from '../../libs/audit/src';
import type { PrincipalFacts } from '../../libs/domain/src';
import type { OutboxRelay } from '../../libs/jobs/src';
import { SessionsService } from '../../apps/api/src/sessions/sessions.service';
import { SessionIntake, SessionTransitions } from '../../libs/sessions/src';
import { TEST_AUDIT_KEY, freshDatabase } from '../support/env';

/**
 * Intake and cancel of SessionsService against a real PostgreSQL: what is written, what is refused
 * without writing anything, Idempotency-Key replays and races, and how many statements each takes.
 */
describe('SessionsService intake and cancel on PostgreSQL', () => {
  let ds: DataSource;
  let config: RcflowConfig;
  let service: SessionsService;
  const kicks = { n: 0 };
  const ids: Record<string, string> = {};
  const who: Record<string, PrincipalFacts> = {};

  const one = async <T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T> => (await ds.query(sql, params))[0];
  const counts = () =>
    one<Record<string, number>>(
      `SELECT (SELECT count(*) FROM sessions)::int AS sessions, (SELECT count(*) FROM audit_events)::int AS events,
         (SELECT count(*) FROM audit_stream_heads)::int AS heads, (SELECT count(*) FROM outbox)::int AS outbox,
         (SELECT count(*) FROM idempotency_keys)::int AS keys`,
    );
  /** Runs `fn` and returns its result with the SQL statements it sent. */
  const statements = async <T>(fn: () => Promise<T>): Promise<{ result: T; sql: string[] }> => {
    const spy = jest.spyOn(Client.prototype, 'query');
    try {
      const result = await fn();
      return { result, sql: spy.mock.calls.map(([q]) => (typeof q === 'string' ? q : (q as { text: string }).text)) };
    } finally {
      spy.mockRestore();
    }
  };
  const facts = async (id: string) => (await loadPrincipalFacts(ds.manager, id))!;
  const rc = (deviceId: string, extra: Record<string, unknown> = {}) =>
    ({ deviceId, type: 'remote-control', access: 'full', ...extra }) as const;

  beforeAll(async () => {
    config = loadConfig({ DATABASE_URL: await freshDatabase('intake'), AUDIT_HMAC_KEY: TEST_AUDIT_KEY, DB_POOL_SIZE: '10' });
    ds = createDataSource(config.database);
    await ds.initialize();
    enablePreparedStatements(ds); // as DatabaseModule does
    const relay = {
      kick: () => {
        kicks.n++;
      },
    } as unknown as OutboxRelay;
    service = new SessionsService(ds, relay, new SessionIntake(ds, relay, config), new SessionTransitions(ds, config), config);

    const principal = async (name: string, kind = 'user') =>
      (await one<{ id: string }>(`INSERT INTO principals (name, kind) VALUES ($1, $2) RETURNING id`, [name, kind])).id;
    const collection = async (name: string) =>
      (await one<{ id: string }>(`INSERT INTO collections (name) VALUES ($1) RETURNING id`, [name])).id;
    const device = async (hostname: string, collectionId: string | null) => {
      const { id } = await one<{ id: string }>(`INSERT INTO devices (hostname, os_family) VALUES ($1, 'windows') RETURNING id`, [hostname]);
      if (collectionId) await ds.query('INSERT INTO collection_members (collection_id, device_id) VALUES ($1, $2)', [collectionId, id]);
      return id;
    };
    const grant = (principalId: string, role: string, collectionIds: string[] | null) =>
      ds.query('INSERT INTO role_assignments (principal_id, role, collection_ids) VALUES ($1, $2, $3)', [principalId, role, collectionIds]);

    ids.desks = await collection('Desks');
    ids.servers = await collection('Servers');
    ids.pc = await device('PC-1', ids.desks);
    ids.pc2 = await device('PC-2', ids.desks);
    ids.srv = await device('SRV-1', ids.servers);
    ids.loose = await device('LOOSE-1', null);
    ids.alice = await principal('alice');
    ids.bot = await principal('ticket-bot', 'service');
    ids.root = await principal('root');
    ids.helpdesk = await principal('HELPDESK', 'group');
    await grant(ids.alice, 'remote_tools_operator', [ids.desks]);
    await grant(ids.bot, 'ticket_integration', [ids.desks]);
    await grant(ids.root, 'full_administrator', null);
    for (const name of ['alice', 'bot', 'root']) who[name] = await facts(ids[name]);
  });
  afterAll(async () => {
    await ds?.destroy();
  });

  it('writes the session, its first audit event and stream head, and the outbox row in one statement', async () => {
    const kicked = kicks.n;
    const { result, sql } = await statements(() => service.create(who.alice, rc(ids.pc, { reason: 'printer' }), null));
    expect(sql).toHaveLength(1);
    expect(result.replayed).toBe(false);
    const id = result.session.id;
    expect(result.session).toMatchObject({ deviceId: ids.pc, viewerId: ids.alice, requesterId: ids.alice, state: 'requested', version: 1 });
    expect(await service.get(who.alice, id)).toEqual(result.session);
    const event = await one(
      `SELECT stream, seq, action, outcome, actor_id, session_id, device_id, viewer_id, reason, data FROM audit_events WHERE session_id = $1`,
      [id],
    );
    expect(event).toEqual({
      stream: `session:${id}`,
      seq: 1,
      action: 'session.requested',
      outcome: 'requested',
      actor_id: ids.alice,
      session_id: id,
      device_id: ids.pc,
      viewer_id: ids.alice,
      reason: 'printer',
      data: { type: 'remote-control', access: 'full', requesterId: ids.alice, version: 1 },
    });
    expect(await one('SELECT seq FROM audit_stream_heads WHERE stream = $1', [`session:${id}`])).toEqual({ seq: 1 });
    expect(await ds.query('SELECT queue, job_name, job_id, payload FROM outbox WHERE job_id = $1', [`advance.${id}`])).toEqual([
      { queue: 'sessions', job_name: 'session.advance', job_id: `advance.${id}`, payload: { sessionId: id } },
    ]);
    expect(kicks.n).toBe(kicked + 1);
    expect((await verifyAudit(ds, TEST_AUDIT_KEY)).problems).toEqual([]);
  });

  it('books a session ahead: stored scheduled with its window, first event scheduled, its job due at its start', async () => {
    const notBefore = new Date(Date.now() + 3_600_000);
    const notAfter = new Date(notBefore.getTime() + 1_800_000);
    const { result, sql } = await statements(() => service.create(who.alice, { ...rc(ids.pc2), notBefore, notAfter }, null));
    expect(sql).toHaveLength(1);
    const id = result.session.id;
    expect(result.session).toMatchObject({ state: 'scheduled', notBefore: notBefore.toISOString(), notAfter: notAfter.toISOString() });
    expect(await service.get(who.alice, id)).toEqual(result.session);
    expect(await one(`SELECT action, outcome, data FROM audit_events WHERE session_id = $1`, [id])).toEqual({
      action: 'session.scheduled',
      outcome: 'scheduled',
      data: {
        type: 'remote-control',
        access: 'full',
        requesterId: ids.alice,
        version: 1,
        notBefore: notBefore.toISOString(),
        notAfter: notAfter.toISOString(),
      },
    });
    const [row] = await ds.query<{ run_at: Date }[]>('SELECT run_at FROM outbox WHERE job_id = $1', [`advance.${id}`]);
    expect(new Date(row.run_at).toISOString()).toBe(notBefore.toISOString());
    // Cancel works while it waits.
    expect(await service.cancel(who.alice, id, 'not needed after all')).toMatchObject({ state: 'cancelled' });
    expect((await verifyAudit(ds, TEST_AUDIT_KEY)).problems).toEqual([]);
  });

  it('refuses unknown and out-of-scope devices with the same 404 and writes nothing', async () => {
    const before = await counts();
    const kicked = kicks.n;
    for (const deviceId of [ids.srv, '00000000-0000-4000-8000-000000000000', ids.loose]) {
      await expect(service.create(who.alice, rc(deviceId), null)).rejects.toMatchObject({ status: 404 });
      await expect(service.create(who.alice, rc(deviceId), `k-${deviceId}`)).rejects.toMatchObject({ status: 404 });
    }
    expect(await counts()).toEqual(before);
    expect(kicks.n).toBe(kicked);
  });

  it('lets an unrestricted grant request a device in no collection', async () => {
    const { session } = await service.create(who.root, rc(ids.loose), null);
    expect(session.deviceId).toBe(ids.loose);
  });

  it('checks requests on behalf of a viewer: the right, the viewer, its kind', async () => {
    const before = await counts();
    await expect(service.create(who.alice, rc(ids.pc, { viewerId: ids.bot }), null)).rejects.toMatchObject({ status: 403 });
    await expect(service.create(who.bot, rc(ids.pc, { viewerId: '00000000-0000-4000-8000-000000000001' }), null)).rejects.toMatchObject({
      status: 422,
      message: expect.stringMatching(/not a known principal/),
    });
    await expect(service.create(who.bot, rc(ids.pc, { viewerId: ids.helpdesk }), null)).rejects.toMatchObject({
      status: 422,
      message: expect.stringMatching(/not a group/),
    });
    await expect(service.create(who.bot, rc(ids.srv, { viewerId: ids.alice }), null)).rejects.toMatchObject({ status: 404 });
    expect(await counts()).toEqual(before);
    const { session } = await service.create(who.bot, rc(ids.pc, { viewerId: ids.alice, ticketRef: 'INC-1' }), null);
    expect(session).toMatchObject({ viewerId: ids.alice, requesterId: ids.bot, ticketRef: 'INC-1' });
  });

  it('replays the same key and body in two statements, refuses another body with 409, and writes nothing more', async () => {
    const body = rc(ids.pc2, { viewerId: ids.alice, ticketRef: 'INC-2' });
    const first = await service.create(who.bot, body, 'INC-2');
    expect(first.replayed).toBe(false);
    const before = await counts();
    const again = await statements(() => service.create(who.bot, body, 'INC-2'));
    expect(again.result).toEqual({ session: first.session, replayed: true });
    expect(again.sql).toHaveLength(2);
    await expect(service.create(who.bot, { ...body, access: 'view' }, 'INC-2')).rejects.toMatchObject({ status: 409 });
    // The key belongs to its principal: the same key from another caller is a new request.
    const other = await service.create(who.alice, rc(ids.pc2), 'INC-2');
    expect(other.session.id).not.toBe(first.session.id);
    expect(await counts()).toMatchObject({ sessions: before.sessions + 1, keys: before.keys + 1 });
  });

  it('makes one session of 50 concurrent requests with one key', async () => {
    const body = rc(ids.pc2, { viewerId: ids.alice, ticketRef: 'INC-3' });
    const before = await counts();
    const all = await Promise.all(Array.from({ length: 50 }, () => service.create(who.bot, body, 'INC-3')));
    expect(new Set(all.map((r) => r.session.id)).size).toBe(1);
    expect(all.filter((r) => !r.replayed)).toHaveLength(1);
    expect(await counts()).toEqual({
      ...before,
      sessions: before.sessions + 1,
      events: before.events + 1,
      heads: before.heads + 1,
      outbox: before.outbox + 1,
      keys: before.keys + 1,
    });
  });

  it('answers each of many concurrent requests sent in one statement: created, refused, replayed', async () => {
    const before = await counts();
    const { result, sql } = await statements(() =>
      Promise.allSettled([
        service.create(who.alice, rc(ids.pc), null),
        service.create(who.alice, rc(ids.srv), null),
        service.create(who.bot, rc(ids.pc, { viewerId: ids.alice, ticketRef: 'INC-9' }), 'INC-9'),
        service.create(who.bot, rc(ids.pc, { viewerId: ids.alice, ticketRef: 'INC-9' }), 'INC-9'),
        service.create(who.bot, rc(ids.pc, { viewerId: ids.helpdesk }), null),
        service.create(who.root, rc(ids.loose), null),
      ]),
    );
    expect(sql.filter((q) => q.startsWith('WITH r AS'))).toHaveLength(1);
    const [mine, outside, keyed, again, group, root] = result;
    expect(mine).toMatchObject({ status: 'fulfilled', value: { replayed: false, session: { deviceId: ids.pc } } });
    expect(outside).toMatchObject({ status: 'rejected', reason: { status: 404 } });
    expect(group).toMatchObject({ status: 'rejected', reason: { status: 422 } });
    expect(root).toMatchObject({ status: 'fulfilled', value: { session: { deviceId: ids.loose } } });
    const pair = [keyed, again].map((r) => (r as PromiseFulfilledResult<{ session: { id: string }; replayed: boolean }>).value);
    expect(pair[0].session.id).toBe(pair[1].session.id);
    expect(pair.map((r) => r.replayed).sort()).toEqual([false, true]);
    expect(await counts()).toEqual({
      sessions: before.sessions + 3,
      events: before.events + 3,
      heads: before.heads + 3,
      outbox: before.outbox + 3,
      keys: before.keys + 1,
    });
    expect((await verifyAudit(ds, TEST_AUDIT_KEY)).problems).toEqual([]);
  });

  it('fails only the request PostgreSQL refuses when it shared a statement with others', async () => {
    // Text PostgreSQL cannot hold (NUL) is refused before any SQL now (chainEntries, the boundaries), so
    // the refusal comes from a constraint this test adds to its own database.
    await ds.query(`ALTER TABLE sessions ADD CONSTRAINT test_refused CHECK (reason IS DISTINCT FROM 'refused by PostgreSQL')`);
    try {
      const before = await counts();
      const { result, sql } = await statements(() =>
        Promise.allSettled([
          service.create(who.alice, rc(ids.pc), null),
          service.create(who.alice, rc(ids.pc, { reason: 'refused by PostgreSQL' }), null),
          service.create(who.alice, rc(ids.pc2), null),
        ]),
      );
      expect(result.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(sql.filter((q) => q.startsWith('WITH r AS'))).toHaveLength(4); // together, then each alone
      expect(await counts()).toMatchObject({ sessions: before.sessions + 2, events: before.events + 2, outbox: before.outbox + 2 });
    } finally {
      await ds.query('ALTER TABLE sessions DROP CONSTRAINT test_refused');
    }
  });

  it('refuses a request with text PostgreSQL would store differently before any SQL, alone or in a batch', async () => {
    const before = await counts();
    const { result, sql } = await statements(() =>
      Promise.allSettled([
        service.create(who.alice, rc(ids.pc), null),
        service.create(who.alice, rc(ids.pc, { reason: 'a lone \ud800 surrogate' }), null),
        service.create(who.alice, rc(ids.pc2, { ticketRef: 'NUL \u0000' }), null),
      ]),
    );
    expect(result.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected']);
    expect(sql.filter((q) => q.startsWith('WITH r AS'))).toHaveLength(1);
    expect(await counts()).toMatchObject({ sessions: before.sessions + 1, events: before.events + 1, outbox: before.outbox + 1 });
    expect((await verifyAudit(ds, TEST_AUDIT_KEY)).problems).toEqual([]);
  });

  it('cancels in two statements, the read and the transition, and answers what the database holds', async () => {
    const { session } = await service.create(who.alice, rc(ids.pc), null);
    const { result, sql } = await statements(() => service.cancel(who.alice, session.id, 'called back'));
    expect(result).toMatchObject({ id: session.id, state: 'cancelled', version: 2 });
    expect(result.endedAt).not.toBeNull();
    expect(await service.get(who.alice, session.id)).toEqual(result);
    expect(sql).toHaveLength(2);
    await expect(service.cancel(who.alice, session.id, null)).rejects.toMatchObject({ status: 409 });
    const timeline = await service.timeline(session.id);
    expect(timeline.map((e: { state: unknown }) => e.state)).toEqual(['requested', 'cancelled']);
    expect((await verifyAudit(ds, TEST_AUDIT_KEY)).problems).toEqual([]);
  });

  it('hides sessions outside the caller scope from get and cancel', async () => {
    const { session } = await service.create(who.root, rc(ids.srv), null);
    await expect(service.get(who.alice, session.id)).rejects.toMatchObject({ status: 404 });
    await expect(service.cancel(who.alice, session.id, null)).rejects.toMatchObject({ status: 404 });
    expect((await service.get(who.root, session.id)).state).toBe('requested');
  });
});
