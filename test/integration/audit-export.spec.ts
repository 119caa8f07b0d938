import { Global, INestApplication, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import http from 'node:http';
import { DataSource } from 'typeorm';
import { AuditEntry, appendAudit } from '../../libs/audit/src';
import { ConfigModule, loadConfig } from '../../libs/config/src';
import { createDataSource } from '../../libs/database/src';
import { createApiKey } from '../../apps/api/src/admin/api-keys.service';
import { createPrincipal } from '../../apps/api/src/admin/principals.service';
import { assignRole } from '../../apps/api/src/admin/role-assignments.service';
import { AuditExportService } from '../../apps/api/src/audit/audit-export.service';
import { AuditQueryService } from '../../apps/api/src/audit/audit-query.service';
import { AuditController } from '../../apps/api/src/audit/audit.controller';
import { VerifyLock } from '../../apps/api/src/audit/verify-lock';
import { AuditCheckpoints } from '../../apps/api/src/audit/audit-checkpoints';
import { AuthGuard } from '../../apps/api/src/auth/auth.guard';
import { KeyRevocations, LocalKeyRevocations } from '../../apps/api/src/edge/key-revocations';
import { RateLimits } from '../../apps/api/src/edge/rate-limits';
import { ConsoleSessions } from '../../apps/api/src/console/console-sessions';
import { ErrorFilter } from '../../apps/api/src/common/exception.filter';
import { TEST_AUDIT_KEY, freshDatabase } from '../support/env';
import { Api } from '../support/http';
import { waitUntil } from '../support/processes';

jest.setTimeout(120_000);

const ids = {
  viewers: ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222'],
  devices: ['33333333-3333-4333-8333-333333333333', '44444444-4444-4444-8444-444444444444'],
  actor: '55555555-5555-4555-8555-555555555555',
};
const DAY = 86_400_000;
const T0 = Date.parse('2026-10-01T00:00:00.000Z');

/** 60 events over 60 days, two viewers, two devices, six sessions, and text that needs escaping. */
async function seed(ds: DataSource): Promise<void> {
  for (let i = 0; i < 60; i++) {
    const session = `0000000${i % 6}-0000-4000-8000-000000000000`;
    const entry: AuditEntry = {
      stream: `session:${session}`,
      actorId: i % 5 === 0 ? ids.actor : null,
      actorKind: i % 5 === 0 ? 'principal' : 'system',
      action: i % 3 === 0 ? 'session.requested' : 'session.advanced',
      outcome: i % 7 === 0 ? 'say "hi"\t\\ é😀' : 'ok',
      sessionId: session,
      deviceId: ids.devices[i % 2],
      viewerId: ids.viewers[Math.floor(i / 30)],
      ticketRef: i % 4 === 0 ? `INC-${i}` : null,
      reason: i % 9 === 0 ? 'line\nbreak \u0001' : null,
      data: { i, nested: { b: [1, 'two'], a: null }, text: i % 2 ? 'x"y\\z' : 'plain' },
    };
    await ds.transaction((tx) => appendAudit(tx, TEST_AUDIT_KEY, [entry], new Date(T0 + i * DAY + 123)));
  }
}

/** The export as an HTTP client sees it: status, content type and the parsed lines. */
async function exportOf(api: Api, query = '') {
  const res = await fetch(`${api.base}/v1/audit/export${query}`, { headers: { authorization: `Bearer ${api.key}` } });
  const text = await res.text();
  const lines =
    res.status === 200 && text
      ? text
          .replace(/\n$/, '')
          .split('\n')
          .map((l) => JSON.parse(l))
      : [];
  return { status: res.status, type: res.headers.get('content-type'), text, lines };
}

/** Every item of the list endpoint for a query, oldest first. */
async function listOf(api: Api, query = '') {
  const items: Record<string, unknown>[] = [];
  let cursor: string | null = null;
  do {
    const sep = query ? '&' : '?';
    const r = await api.get(`/v1/audit${query}${sep}limit=500${cursor ? `&cursor=${cursor}` : ''}`);
    expect(r.status).toBe(200);
    items.push(...r.body.items);
    cursor = r.body.nextCursor;
  } while (cursor);
  return items.reverse();
}

/** Opens an export and holds it without reading; resolves once the headers arrived. */
function openExport(api: Api): Promise<{ res: http.IncomingMessage; req: http.ClientRequest }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${api.base}/v1/audit/export`, { headers: { authorization: `Bearer ${api.key}` } }, (res) => {
      res.pause();
      resolve({ res, req });
    });
    req.on('error', reject);
  });
}

describe.each([
  ['PostgreSQL (COPY)', true],
  ['PGlite (keyset pages)', false],
])('GET /v1/audit/export on %s', (_name, onPostgres) => {
  let ds: DataSource;
  let app: INestApplication;
  let admin: Api;
  let nobody: Api;
  let anon: Api;
  /** read_only_auditor over one collection holding ids.devices[0]. */
  let scoped: Api;

  beforeAll(async () => {
    const url = onPostgres ? await freshDatabase('audit_export') : null;
    ds = createDataSource({ url, pgliteDir: 'memory', poolSize: 4 });
    await ds.initialize();
    if (!onPostgres) await ds.runMigrations({ transaction: 'each' });
    const keys = await ds.transaction(async (manager) => {
      const ctx = { manager, auditKey: TEST_AUDIT_KEY, actorId: null };
      const root = await createPrincipal(ctx, { name: 'root', kind: 'user' });
      await assignRole(ctx, { principalId: root.id, role: 'read_only_auditor', collectionIds: null });
      const plain = await createPrincipal(ctx, { name: 'plain', kind: 'user' });
      const [{ id: collectionId }] = await manager.query<{ id: string }[]>(`INSERT INTO collections (name) VALUES ('one') RETURNING id`);
      await manager.query('INSERT INTO collection_members (collection_id, device_id) VALUES ($1, $2)', [collectionId, ids.devices[0]]);
      const narrow = await createPrincipal(ctx, { name: 'narrow', kind: 'user' });
      await assignRole(ctx, { principalId: narrow.id, role: 'read_only_auditor', collectionIds: [collectionId] });
      return {
        root: (await createApiKey(ctx, { principalId: root.id, name: 'test' })).key,
        plain: (await createApiKey(ctx, { principalId: plain.id, name: 'test' })).key,
        narrow: (await createApiKey(ctx, { principalId: narrow.id, name: 'test' })).key,
      };
    });
    await seed(ds);
    const config = loadConfig({
      DATABASE_URL: url ?? undefined,
      PGLITE_DIR: 'memory',
      AUDIT_HMAC_KEY: TEST_AUDIT_KEY,
      RATE_LIMIT_PER_MINUTE: '100000',
    });
    @Global()
    @Module({ providers: [{ provide: DataSource, useValue: ds }], exports: [DataSource] })
    class TestDatabaseModule {}
    const moduleRef = await Test.createTestingModule({
      imports: [ConfigModule.forRoot(config), TestDatabaseModule],
      controllers: [AuditController],
      providers: [
        AuditExportService,
        AuditQueryService,
        VerifyLock,
        // Checkpoints without Redis or a directory: none to check against (audit-checkpoint.spec.ts covers them).
        { provide: AuditCheckpoints, useValue: { newest: () => Promise.resolve({ found: null, invalid: [], notes: [] }) } },
        // The edge without Redis: nothing rate-limited, key revocations told within this process.
        { provide: RateLimits, useValue: { consume: () => Promise.resolve() } },
        { provide: KeyRevocations, useValue: new LocalKeyRevocations() },
        { provide: ConsoleSessions, useValue: { resolve: () => Promise.resolve(null) } },
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_FILTER, useClass: ErrorFilter },
      ],
    }).compile();
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- Nest takes a plain options object; an instance of its declared class would carry own undefined fields (abortOnError, ...)
    app = moduleRef.createNestApplication({ logger: false });
    await app.listen(0, '127.0.0.1');
    const base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    anon = new Api(base);
    admin = anon.as(keys.root);
    nobody = anon.as(keys.plain);
    scoped = anon.as(keys.narrow);
  });

  it('shows a caller scoped to one collection the events of its devices only, in the export and the list alike', async () => {
    const own = await exportOf(scoped);
    expect(own.status).toBe(200);
    // 30 of the 60 seeded events are about ids.devices[0]; the administration events (no device) are not shown.
    expect(own.lines).toHaveLength(30);
    expect(own.lines.filter((l) => l.deviceId !== ids.devices[0])).toEqual([]);
    expect(own.lines).toEqual(await listOf(scoped));
    expect((await exportOf(admin)).lines.length).toBeGreaterThan(60);
    for (const q of [`?deviceId=${ids.devices[1]}`, `?viewerId=${ids.viewers[1]}&deviceId=${ids.devices[1]}`]) {
      expect({ q, lines: (await exportOf(scoped, q)).lines }).toEqual({ q, lines: [] });
      expect({ q, items: await listOf(scoped, q) }).toEqual({ q, items: [] });
    }
    expect((await scoped.get('/v1/audit/verify')).status).toBe(403);
  });

  afterAll(async () => {
    await app?.close();
    await ds?.destroy();
  });

  it('streams every event as NDJSON, oldest first, each line the item the list shows', async () => {
    const all = await exportOf(admin);
    expect(all.status).toBe(200);
    expect(all.type).toBe('application/x-ndjson; charset=utf-8');
    expect(all.text.endsWith('\n')).toBe(true);
    const [{ n }] = await ds.query('SELECT count(*)::int AS n FROM audit_events');
    expect(all.lines).toHaveLength(n);
    const numericIds = all.lines.map((l) => Number(l.id));
    expect(numericIds).toEqual([...numericIds].sort((a, b) => a - b));
    expect(all.lines).toEqual(await listOf(admin));
    expect(all.lines.find((l) => l.reason === 'line\nbreak \u0001')).toMatchObject({
      outcome: 'say "hi"\t\\ é😀',
      data: { i: 0, text: 'plain' },
    });
  });

  it('applies each filter as the list does', async () => {
    const queries = [
      `?viewerId=${ids.viewers[1]}`,
      `?deviceId=${ids.devices[0]}`,
      `?sessionId=00000003-0000-4000-8000-000000000000`,
      `?actorId=${ids.actor}`,
      `?action=session.requested`,
      `?from=2026-10-11T00:00:00Z&to=2026-10-21T00:00:00%2B02:00`,
      `?viewerId=${ids.viewers[0]}&deviceId=${ids.devices[1]}&from=2026-10-05T00:00:00.123Z`,
      `?viewerId=${ids.viewers[0]}&from=2027-01-01T00:00:00Z`,
    ];
    const total = (await exportOf(admin)).lines.length;
    for (const q of queries) {
      const exported = await exportOf(admin, q);
      expect({ q, status: exported.status }).toEqual({ q, status: 200 });
      expect({ q, lines: exported.lines }).toEqual({ q, lines: await listOf(admin, q) });
      expect(exported.lines.length).toBeLessThan(total);
    }
    expect((await exportOf(admin, `?viewerId=${ids.viewers[1]}`)).lines.every((l) => l.viewerId === ids.viewers[1])).toBe(true);
    expect((await exportOf(admin, `?viewerId=${ids.viewers[0]}&from=2027-01-01T00:00:00Z`)).text).toBe('');
  });

  it('refuses a malformed query with 400, before streaming anything', async () => {
    for (const q of [
      '?sessionId=nope',
      '?limit=10',
      '?cursor=abc',
      '?from=yesterday',
      '?action=DROP%20TABLE',
      '?unknown=1',
      `?viewerId=${ids.viewers[0]}'--`,
    ]) {
      const r = await exportOf(admin, q);
      expect({ q, status: r.status, type: r.type }).toEqual({ q, status: 400, type: expect.stringContaining('application/json') });
      expect(JSON.parse(r.text).error).toMatchObject({ status: 400, code: 'validation_failed' });
    }
  });

  it('answers 401 without a key and 403 without audit.read', async () => {
    const noKey = await exportOf(anon);
    expect(noKey.status).toBe(401);
    expect(JSON.parse(noKey.text).error.code).toBe('unauthenticated');
    const noRight = await exportOf(nobody);
    expect(noRight.status).toBe(403);
    expect(JSON.parse(noRight.text).error.message).toMatch(/audit\.read/);
  });

  describe('with a trail too large to buffer', () => {
    let total: number;

    beforeAll(async () => {
      // Filler rows (the export does not check hashes): ~60 MB of NDJSON.
      await ds.query(
        `INSERT INTO audit_events (stream, seq, occurred_at, actor_kind, action, outcome, data, prev_hash, hash, reason)
         SELECT 'bulk:' || g, 1, now(), 'system', 'bulk.row', 'ok', '{}', repeat('0', 64), repeat('0', 64), repeat('x', 800)
           FROM generate_series(1, 60000) g`,
      );
      total = (await ds.query('SELECT count(*)::int AS n FROM audit_events'))[0].n;
    });

    const exportConnections = async () =>
      onPostgres
        ? (await ds.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'rcflow-audit-export'`))[0].n
        : 0;

    it('stays healthy when the client goes away mid-stream, and releases the connection', async () => {
      const { res, req } = await openExport(admin);
      const first: Buffer = await new Promise((resolve) => {
        res.once('data', resolve);
        res.resume();
      });
      expect(first.length).toBeGreaterThan(0);
      req.destroy();
      await waitUntil(async () => (await exportConnections()) === 0, 10_000, 'the export connection to close');
      expect((await admin.get('/v1/audit?limit=1')).status).toBe(200);
      const again = await exportOf(admin);
      expect(again.status).toBe(200);
      expect(again.lines).toHaveLength(total);
      expect(await exportConnections()).toBe(0);
    });

    it('caps exports in flight, and frees the slots when their clients leave', async () => {
      const held = [await openExport(admin), await openExport(admin)];
      const third = await exportOf(admin);
      expect(third.status).toBe(429);
      expect(JSON.parse(third.text).error.code).toBe('rate_limited');
      for (const h of held) h.req.destroy();
      const after = await waitUntil(
        async () => {
          const r = await exportOf(admin, '?action=bulk.row');
          return r.status === 200 ? r : null;
        },
        10_000,
        'an export slot to free up',
      );
      expect(after.lines).toHaveLength(60_000);
    });
  });
});
