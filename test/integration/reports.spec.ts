import { Global, INestApplication, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import http from 'node:http';
import type { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { appendAudit } from '../../libs/audit/src';
import { ConfigModule, loadConfig } from '../../libs/config/src';
import { createDataSource } from '../../libs/database/src';
import { createApiKey } from '../../apps/api/src/admin/api-keys.service';
import { createPrincipal } from '../../apps/api/src/admin/principals.service';
import { assignRole } from '../../apps/api/src/admin/role-assignments.service';
import { AuthGuard } from '../../apps/api/src/auth/auth.guard';
import { KeyRevocations, LocalKeyRevocations } from '../../apps/api/src/edge/key-revocations';
import { RateLimits } from '../../apps/api/src/edge/rate-limits';
import { ErrorFilter } from '../../apps/api/src/common/exception.filter';
import { ReportsController } from '../../apps/api/src/reports/reports.controller';
import { ConsoleSessions } from '../../apps/api/src/console/console-sessions';
import { ReportRollupService } from '../../apps/api/src/reports/report-rollup.service';
import { ReportsService } from '../../apps/api/src/reports/reports.service';
import { TEST_AUDIT_KEY, freshDatabase } from '../support/env';
import { Api } from '../support/http';
import { waitUntil } from '../support/processes';

jest.setTimeout(180_000);

const T0 = Date.parse('2026-10-01T00:00:00.000Z');
const H = 3_600_000;
const D = 24 * H;
const at = (ms: number) => new Date(ms).toISOString();
const RANGE = `from=${at(T0)}&to=${at(T0 + 3 * D)}`;
/** A window of its own for the bulk sessions of the streaming tests. */
const BULK_FROM = Date.parse('2026-08-01T00:00:00.000Z');
const BULK = 50_000;
const BULK_RANGE = `from=${at(BULK_FROM)}&to=${at(BULK_FROM + 10 * D)}`;

interface Seeded {
  alice: string;
  bob: string;
  wsA: string;
  wsB: string;
  desks: string;
  servers: string;
  s: Record<number, string>;
}

/**
 * Ten sessions over three days (and one the day before), on WS-A (collection desks) and WS-B
 * (servers), each with the numbers each report must give written next to it:
 *   1 A alice ended  prompt   +30 s, 600 s      granted
 *   2 A alice ended  prompt   +10 s, 100 s      pre-approved (the active event says so)
 *   3 A bob   denied prompt                      denied
 *   4 A alice consent_timeout                    timed out
 *   5 B bob   ended  unattended +20 s, 300 s    not required; unattended, reason and ticket
 *   6 B alice rejected: permitted_viewer, user_presence
 *   7 A bob   rejected: permitted_viewer
 *   8 B alice active not_required +5 s           not required
 *   9 A alice ended, the day before the range    (outside)
 *  10 A bob   ended  prompt   +60 s, 100 s      timed out (started: the timeout allows it)
 */
async function seed(ds: DataSource, requester: string): Promise<Seeded> {
  const q = <T = { id: string }[]>(sql: string, params: unknown[] = []) => ds.query<T>(sql, params);
  const [{ id: desks }] = await q(`INSERT INTO collections (name) VALUES ('desks') RETURNING id`);
  const [{ id: servers }] = await q(`INSERT INTO collections (name) VALUES ('servers') RETURNING id`);
  const device = async (hostname: string, collection: string) => {
    const [{ id }] = await q(`INSERT INTO devices (hostname, os_family) VALUES ($1, 'windows') RETURNING id`, [hostname]);
    await q('INSERT INTO collection_members (collection_id, device_id) VALUES ($1, $2)', [collection, id]);
    return id;
  };
  const wsA = await device('WS-A', desks);
  const wsB = await device('WS-B', servers);
  const [{ id: alice }] = await q(`INSERT INTO principals (name, kind) VALUES ('alice', 'user') RETURNING id`);
  const [{ id: bob }] = await q(`INSERT INTO principals (name, kind) VALUES ('bob', 'user') RETURNING id`);
  const rows: [number, number, string, string, string, string | null, number | null, number | null, string | null, string | null][] = [
    // n, created, device, viewer, state, consent rule, wait s, lasted s, reason, ticket
    [1, T0 + 10 * H, wsA, alice, 'ended', 'prompt_user', 30, 600, 'printer', null],
    [2, T0 + 11 * H, wsA, alice, 'ended', 'prompt_user', 10, 100, null, null],
    [3, T0 + 12 * H, wsA, bob, 'denied', 'prompt_user', null, null, null, null],
    [4, T0 + D + 9 * H, wsA, alice, 'consent_timeout', 'prompt_user', null, null, null, null],
    [5, T0 + D + 10 * H, wsB, bob, 'ended', 'unattended_allowed', 20, 300, '=cmd|calc', '@INC-5, "urgent"'],
    [6, T0 + D + 11 * H, wsB, alice, 'rejected', null, null, null, null, null],
    [7, T0 + 2 * D + 8 * H, wsA, bob, 'rejected', null, null, null, null, null],
    [8, T0 + 2 * D + 9 * H, wsB, alice, 'active', 'not_required', 5, null, null, null],
    [9, T0 - H, wsA, alice, 'ended', 'prompt_user', 1, 1, null, null],
    [10, T0 + D + 12 * H, wsA, bob, 'ended', 'prompt_user', 60, 100, null, null],
  ];
  const s: Record<number, string> = {};
  for (const [n, created, dev, viewer, state, rule, wait, lasted, reason, ticket] of rows) {
    const started = wait === null ? null : new Date(created + wait * 1000);
    const ended =
      lasted !== null
        ? new Date(created + (wait ?? 0) * 1000 + lasted * 1000)
        : ['active'].includes(state)
          ? null
          : new Date(created + 2000);
    const [{ id }] = await q(
      `INSERT INTO sessions (created_at, device_id, viewer_id, requester_id, type, access, state, state_changed_at, consent_rule,
          started_at, ended_at, reason, ticket_ref)
        VALUES ($1, $2, $3, $4, 'remote-control', 'full', $5, $1, $6, $7, $8, $9, $10) RETURNING id`,
      [new Date(created), dev, viewer, requester, state, rule, started, ended, reason, ticket],
    );
    s[n] = id;
    const failed = n === 6 ? ['permitted_viewer', 'user_presence'] : n === 7 ? ['permitted_viewer'] : [];
    const checks = ['device_enrolled', 'rbac_scope', 'permitted_viewer', 'user_presence'].map((c, i) => ({
      id: c,
      number: [1, 2, 3, 7][i],
      passed: !failed.includes(c),
      detail: c,
    }));
    await q(
      `INSERT INTO eligibility_decisions (session_id, eligible, consent_rule, checks, facts, evaluated_at) VALUES ($1, $2, $3, $4, '{}', $5)`,
      [id, failed.length === 0, rule ?? 'refused', JSON.stringify(checks), new Date(created + 1000)],
    );
    if (started) {
      const consent = n === 2 ? 'pre_approved' : n === 10 ? 'timed_out' : rule === 'prompt_user' ? 'granted' : 'not_required';
      await ds.transaction((tx) =>
        appendAudit(
          tx,
          TEST_AUDIT_KEY,
          [
            {
              stream: `session:${id}`,
              actorId: dev,
              actorKind: 'agent',
              action: 'session.active',
              outcome: 'active',
              sessionId: id,
              deviceId: dev,
              viewerId: viewer,
              ticketRef: ticket,
              reason: null,
              data: { consentRule: rule, consent, ...(rule === 'prompt_user' && { consentBy: n === 2 ? 'pre_approval' : 'prompt' }) },
            },
          ],
          started,
        ),
      );
    }
  }
  // The bulk: BULK sessions of bob on WS-A, one a second from BULK_FROM.
  await q(
    `INSERT INTO sessions (created_at, device_id, viewer_id, requester_id, type, access, state, state_changed_at, reason)
      SELECT $1::timestamptz + make_interval(secs => g), $2, $3, $4, 'remote-control', 'view', 'ended', $1::timestamptz, 'bulk ' || g
      FROM generate_series(0, $5::int - 1) g`,
    [new Date(BULK_FROM), wsA, bob, requester, BULK],
  );
  await q('ANALYZE');
  return { alice, bob, wsA, wsB, desks, servers, s };
}

/** A report as an HTTP client reads it. */
async function report(api: Api, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${api.base}${path}`, { headers: { authorization: `Bearer ${api.key}`, ...headers } });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* CSV, NDJSON */
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Opens a report and holds it without reading; resolves once the headers arrived. */
function openReport(api: Api, path: string): Promise<{ res: http.IncomingMessage; req: http.ClientRequest }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${api.base}${path}`, { headers: { authorization: `Bearer ${api.key}` } }, (res) => {
      res.pause();
      resolve({ res, req });
    });
    req.on('error', reject);
  });
}

/** Parses RFC 4180 CSV (quoted fields, doubled quotes, CRLF records). */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i++;
    } else field += c;
  }
  expect(field).toBe('');
  expect(record).toEqual([]);
  return records;
}

describe('GET /v1/reports on PostgreSQL', () => {
  let ds: DataSource;
  let app: INestApplication;
  let root: Api;
  let narrow: Api;
  let plain: Api;
  let w: Seeded;
  let service: ReportsService;
  let rollup: ReportRollupService;
  /** The aggregate reports the rollup serves, as sessions alone answered them before it first ran. */
  const ROLLED: [() => Api, string, string][] = [
    [() => root, 'sessions-per-day', RANGE],
    [() => narrow, 'sessions-per-day', RANGE],
    [() => root, 'sessions-per-day', `from=${at(T0 + 13 * H)}&to=${at(T0 + 2 * D + 5 * H)}`],
    [() => root, 'top-viewers', RANGE],
    [() => root, 'top-devices', RANGE],
    [() => narrow, 'top-devices', RANGE],
    [() => root, 'top-viewers', `from=${at(T0 + 13 * H)}&to=${at(T0 + 3 * D)}&limit=5`],
  ];
  const beforeRollup: Record<string, unknown>[][] = [];

  beforeAll(async () => {
    const url = await freshDatabase('reports');
    ds = createDataSource({ url, pgliteDir: 'memory', poolSize: 4 });
    await ds.initialize();
    const made = await ds.transaction(async (manager) => {
      const ctx = { manager, auditKey: TEST_AUDIT_KEY, actorId: null };
      const r = await createPrincipal(ctx, { name: 'root', kind: 'user' });
      await assignRole(ctx, { principalId: r.id, role: 'read_only_auditor', collectionIds: null });
      const p = await createPrincipal(ctx, { name: 'plain', kind: 'user' });
      return { r, p, ctx };
    });
    w = await seed(ds, made.r.id);
    const keys = await ds.transaction(async (manager) => {
      const ctx = { manager, auditKey: TEST_AUDIT_KEY, actorId: null };
      const n = await createPrincipal(ctx, { name: 'narrow', kind: 'user' });
      await assignRole(ctx, { principalId: n.id, role: 'read_only_auditor', collectionIds: [w.desks] });
      return {
        root: (await createApiKey(ctx, { principalId: made.r.id, name: 'test' })).key,
        plain: (await createApiKey(ctx, { principalId: made.p.id, name: 'test' })).key,
        narrow: (await createApiKey(ctx, { principalId: n.id, name: 'test' })).key,
      };
    });
    const config = loadConfig({
      DATABASE_URL: url,
      AUDIT_HMAC_KEY: TEST_AUDIT_KEY,
      RATE_LIMIT_PER_MINUTE: '100000',
      REPORT_CONCURRENCY: '2',
      REPORT_MAX_SPAN_DAYS: '100',
    });
    @Global()
    @Module({ providers: [{ provide: DataSource, useValue: ds }], exports: [DataSource] })
    class TestDatabaseModule {}
    const moduleRef = await Test.createTestingModule({
      imports: [ConfigModule.forRoot(config), TestDatabaseModule],
      controllers: [ReportsController],
      providers: [
        ReportsService,
        ReportRollupService,
        { provide: RateLimits, useValue: { consume: () => Promise.resolve() } },
        { provide: KeyRevocations, useValue: new LocalKeyRevocations() },
        { provide: ConsoleSessions, useValue: { resolve: () => Promise.resolve(null) } },
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_FILTER, useClass: ErrorFilter },
      ],
    }).compile();
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- Nest takes a plain options object
    app = moduleRef.createNestApplication({ logger: false });
    await app.listen(0, '127.0.0.1');
    service = app.get(ReportsService);
    const base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    root = new Api(base, keys.root);
    narrow = new Api(base, keys.narrow);
    plain = new Api(base, keys.plain);
    rollup = app.get(ReportRollupService);
    for (const [api, name, query] of ROLLED) beforeRollup.push(await rowsOf(api(), name, query));
    // Every other test reads the whole days of its range from the rollup.
    expect(await rollup.roll(0)).toBeGreaterThan(0);
  });

  afterAll(async () => {
    await app?.close();
    await ds?.destroy();
  });

  const rowsOf = async (api: Api, name: string, query = RANGE) => {
    const r = await report(api, `/v1/reports/${name}?${query}`);
    expect({ name, status: r.status }).toEqual({ name, status: 200 });
    return r.json.rows as Record<string, unknown>[];
  };

  it('reads untouched whole days from the rollup, the rest from sessions, with the same rows as sessions alone', async () => {
    const [{ n }] = await ds.query(`SELECT count(*)::int AS n FROM report_rollups`);
    expect(n).toBeGreaterThan(0);
    expect(await rollup.plan(new Date(T0), new Date(T0 + 3 * D))).toEqual({
      days: ['2026-10-01', '2026-10-02', '2026-10-03'],
      tail: [],
    });
    expect(await rollup.plan(new Date(T0 + 13 * H), new Date(T0 + 2 * D + 5 * H))).toEqual({
      days: ['2026-10-02'],
      tail: [
        [new Date(T0 + 13 * H), new Date(T0 + D)],
        [new Date(T0 + 2 * D), new Date(T0 + 2 * D + 5 * H)],
      ],
    });
    for (const [i, [api, name, query]] of ROLLED.entries()) {
      expect(beforeRollup[i].length).toBeGreaterThan(0);
      expect({ name, query, rows: await rowsOf(api(), name, query) }).toEqual({ name, query, rows: beforeRollup[i] });
    }
  });

  it('stays current: a transition after the rollup counts at once, from sessions, until the next rollup takes it in', async () => {
    const [s] = await ds.query(
      `SELECT id, state, state_changed_at FROM sessions WHERE created_at >= $1 AND created_at < $2 AND state = 'ended' ORDER BY id LIMIT 1`,
      [at(T0), at(T0 + D)],
    );
    await ds.query(`UPDATE sessions SET state = 'failed', state_changed_at = now() WHERE id = $1`, [s.id]);
    try {
      expect((await rollup.plan(new Date(T0), new Date(T0 + 3 * D)))!.days).toEqual(['2026-10-02', '2026-10-03']);
      const changed = await rowsOf(root, 'sessions-per-day');
      expect(changed).not.toEqual(beforeRollup[0]);
      const day = (o: string) => changed.find((r) => r.day === '2026-10-01' && r.outcome === o)?.sessions ?? 0;
      const was = (o: string) => beforeRollup[0].find((r) => r.day === '2026-10-01' && r.outcome === o)?.sessions ?? 0;
      expect([day('ended'), day('failed')]).toEqual([Number(was('ended')) - 1, Number(was('failed')) + 1]);
      expect(await rollup.roll(0)).toBe(1);
      expect(await rollup.plan(new Date(T0), new Date(T0 + 3 * D))).toEqual({ days: ['2026-10-01', '2026-10-02', '2026-10-03'], tail: [] });
      expect(await rowsOf(root, 'sessions-per-day')).toEqual(changed);
    } finally {
      await ds.query(`UPDATE sessions SET state = $2, state_changed_at = now() WHERE id = $1`, [s.id, s.state]);
      await rollup.roll(0);
    }
    expect(await rowsOf(root, 'sessions-per-day')).toEqual(beforeRollup[0]);
  });

  it('lists the nine reports with their parameters', async () => {
    const r = await root.get('/v1/reports');
    expect(r.status).toBe(200);
    expect(r.body.items.map((i: { name: string }) => i.name)).toEqual([
      'computers-by-user',
      'remote-control-info',
      'sessions-per-day',
      'refusals-by-check',
      'consent-outcomes',
      'unattended-sessions',
      'durations',
      'top-viewers',
      'top-devices',
    ]);
    const byUser = r.body.items[0];
    expect(byUser.title).toBe('Remote Control – All computers remote controlled by a specific user');
    expect(byUser.params.find((p: { name: string }) => p.name === 'viewerId')).toMatchObject({ required: true, type: 'uuid' });
    expect((await narrow.get('/v1/reports')).status).toBe(200);
    expect((await plain.get('/v1/reports')).status).toBe(403);
  });

  it('answers the JSON shape: report, title, range, columns and rows keyed by column', async () => {
    const r = await report(root, `/v1/reports/sessions-per-day?${RANGE}`);
    expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(r.json).toMatchObject({
      report: 'sessions-per-day',
      title: 'Sessions per day by outcome',
      from: at(T0),
      to: at(T0 + 3 * D),
      columns: [
        { key: 'day', label: 'Day (UTC)' },
        { key: 'outcome', label: 'Outcome' },
        { key: 'sessions', label: 'Sessions' },
      ],
    });
  });

  it('sessions-per-day counts requests per UTC day by outcome, for all and for a scoped reader', async () => {
    expect(await rowsOf(root, 'sessions-per-day')).toEqual([
      { day: '2026-10-01', outcome: 'denied', sessions: 1 },
      { day: '2026-10-01', outcome: 'ended', sessions: 2 },
      { day: '2026-10-02', outcome: 'consent_timeout', sessions: 1 },
      { day: '2026-10-02', outcome: 'ended', sessions: 2 },
      { day: '2026-10-02', outcome: 'rejected', sessions: 1 },
      { day: '2026-10-03', outcome: 'active', sessions: 1 },
      { day: '2026-10-03', outcome: 'rejected', sessions: 1 },
    ]);
    expect(await rowsOf(narrow, 'sessions-per-day')).toEqual([
      { day: '2026-10-01', outcome: 'denied', sessions: 1 },
      { day: '2026-10-01', outcome: 'ended', sessions: 2 },
      { day: '2026-10-02', outcome: 'consent_timeout', sessions: 1 },
      { day: '2026-10-02', outcome: 'ended', sessions: 1 },
      { day: '2026-10-03', outcome: 'rejected', sessions: 1 },
    ]);
    // The collection filter gives root what scope gives narrow.
    expect(await rowsOf(root, 'sessions-per-day', `${RANGE}&collectionId=${w.desks}`)).toEqual(await rowsOf(narrow, 'sessions-per-day'));
  });

  it('refusals-by-check counts each failed check of refused decisions', async () => {
    expect(await rowsOf(root, 'refusals-by-check')).toEqual([
      { check: 'permitted_viewer', number: 3, refusals: 2 },
      { check: 'user_presence', number: 7, refusals: 1 },
    ]);
    expect(await rowsOf(narrow, 'refusals-by-check')).toEqual([{ check: 'permitted_viewer', number: 3, refusals: 1 }]);
    expect(await rowsOf(root, 'refusals-by-check', `${RANGE}&viewerId=${w.alice}`)).toEqual([
      { check: 'permitted_viewer', number: 3, refusals: 1 },
      { check: 'user_presence', number: 7, refusals: 1 },
    ]);
  });

  it('consent-outcomes tells granted, denied, timed out, pre-approved and not required apart', async () => {
    expect(await rowsOf(root, 'consent-outcomes')).toEqual([
      { outcome: 'granted', sessions: 1 },
      { outcome: 'denied', sessions: 1 },
      { outcome: 'timed_out', sessions: 2 },
      { outcome: 'pre_approved', sessions: 1 },
      { outcome: 'not_required', sessions: 2 },
    ]);
    expect(await rowsOf(narrow, 'consent-outcomes')).toEqual([
      { outcome: 'granted', sessions: 1 },
      { outcome: 'denied', sessions: 1 },
      { outcome: 'timed_out', sessions: 2 },
      { outcome: 'pre_approved', sessions: 1 },
      { outcome: 'not_required', sessions: 0 },
    ]);
  });

  it('unattended-sessions lists the sessions allowed with nobody at the computer, with reason and ticket', async () => {
    expect(await rowsOf(root, 'unattended-sessions')).toEqual([
      expect.objectContaining({ sessionId: w.s[5], computer: 'WS-B', viewer: 'bob', reason: '=cmd|calc', ticketRef: '@INC-5, "urgent"' }),
    ]);
    expect(await rowsOf(narrow, 'unattended-sessions')).toEqual([]);
  });

  it('durations gives p50 and p95 of the time to active and of the session', async () => {
    expect(await rowsOf(root, 'durations')).toEqual([
      { measure: 'request_to_active', sessions: 5, p50Seconds: 20, p95Seconds: 54 },
      { measure: 'session_duration', sessions: 4, p50Seconds: 200, p95Seconds: 555 },
    ]);
    expect(await rowsOf(narrow, 'durations')).toEqual([
      { measure: 'request_to_active', sessions: 3, p50Seconds: 30, p95Seconds: 57 },
      { measure: 'session_duration', sessions: 3, p50Seconds: 100, p95Seconds: 550 },
    ]);
  });

  it('top-viewers and top-devices rank by requests, with started, refused and distinct counterparts', async () => {
    expect(await rowsOf(root, 'top-viewers')).toEqual([
      { viewerId: w.alice, viewer: 'alice', sessions: 5, started: 3, refused: 1, devices: 2 },
      { viewerId: w.bob, viewer: 'bob', sessions: 4, started: 2, refused: 1, devices: 2 },
    ]);
    expect(await rowsOf(root, 'top-devices', `${RANGE}&limit=1`)).toEqual([
      { deviceId: w.wsA, computer: 'WS-A', sessions: 6, started: 3, refused: 1, viewers: 2 },
    ]);
    expect(await rowsOf(root, 'top-devices')).toEqual([
      { deviceId: w.wsA, computer: 'WS-A', sessions: 6, started: 3, refused: 1, viewers: 2 },
      { deviceId: w.wsB, computer: 'WS-B', sessions: 3, started: 2, refused: 1, viewers: 2 },
    ]);
    expect(await rowsOf(narrow, 'top-devices')).toEqual([
      { deviceId: w.wsA, computer: 'WS-A', sessions: 6, started: 3, refused: 1, viewers: 2 },
    ]);
  });

  it('computers-by-user lists one viewer’s sessions in time order; remote-control-info one computer’s', async () => {
    const alice = await rowsOf(root, 'computers-by-user', `${RANGE}&viewerId=${w.alice}`);
    expect(alice.map((r) => r.sessionId)).toEqual([w.s[1], w.s[2], w.s[4], w.s[6], w.s[8]]);
    expect(alice[0]).toEqual({
      requestedAt: at(T0 + 10 * H),
      computer: 'WS-A',
      deviceId: w.wsA,
      viewer: 'alice',
      viewerId: w.alice,
      sessionId: w.s[1],
      type: 'remote-control',
      access: 'full',
      state: 'ended',
      startedAt: at(T0 + 10 * H + 30_000),
      endedAt: at(T0 + 10 * H + 630_000),
      reason: 'printer',
      ticketRef: null,
    });
    const scoped = await rowsOf(narrow, 'computers-by-user', `${RANGE}&viewerId=${w.alice}`);
    expect(scoped.map((r) => r.sessionId)).toEqual([w.s[1], w.s[2], w.s[4]]);
    const wsB = await rowsOf(root, 'remote-control-info', `${RANGE}&deviceId=${w.wsB}`);
    expect(wsB.map((r) => r.sessionId)).toEqual([w.s[5], w.s[6], w.s[8]]);
    const everything = await rowsOf(root, 'remote-control-info');
    expect(everything).toHaveLength(9);
    expect(everything.map((r) => r.sessionId)).not.toContain(w.s[9]);
  });

  it('keeps a scoped reader to its collection in CSV and NDJSON too', async () => {
    for (const name of ['remote-control-info', 'top-devices', 'unattended-sessions', 'computers-by-user']) {
      const q = `${RANGE}&viewerId=${w.bob}`;
      const csv = await report(narrow, `/v1/reports/${name}?${q}&format=csv`);
      const nd = await report(narrow, `/v1/reports/${name}?${q}`, { accept: 'application/x-ndjson' });
      expect([csv.status, nd.status]).toEqual([200, 200]);
      for (const text of [csv.text, nd.text]) {
        expect({ name, leaks: text.includes(w.wsB) || text.includes('WS-B') }).toEqual({ name, leaks: false });
      }
      const rootCsv = await report(root, `/v1/reports/${name}?${q}&format=csv`);
      if (name !== 'computers-by-user') expect({ name, shows: rootCsv.text.includes('WS-B') }).toEqual({ name, shows: true });
    }
  });

  it('writes CSV with a header of labels, RFC 4180 quoting and formula cells made inert', async () => {
    const r = await report(root, `/v1/reports/unattended-sessions?${RANGE}`, { accept: 'text/csv' });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(r.headers.get('content-disposition')).toBe('attachment; filename="unattended-sessions-20261001T000000Z-20261004T000000Z.csv"');
    const records = parseCsv(r.text);
    expect(records[0]).toEqual([
      'Requested at',
      'Computer',
      'Device id',
      'Viewer',
      'Viewer id',
      'Session id',
      'Type',
      'Access',
      'Outcome',
      'Started at',
      'Ended at',
      'Reason',
      'Ticket',
    ]);
    expect(records).toHaveLength(2);
    expect(records[1].slice(11)).toEqual(["'=cmd|calc", '\'@INC-5, "urgent"']);
    expect(records[1][1]).toBe('WS-B');
  });

  it('streams a long list report in every format, each row once, in order', async () => {
    const csv = await report(root, `/v1/reports/remote-control-info?${BULK_RANGE}&format=csv`);
    const lines = csv.text.split('\r\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(BULK + 1);
    const nd = await report(root, `/v1/reports/remote-control-info?${BULK_RANGE}&format=ndjson`);
    expect(nd.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    const items = nd.text
      .replace(/\n$/, '')
      .split('\n')
      .map((l) => JSON.parse(l) as { reason: string; requestedAt: string });
    expect(items).toHaveLength(BULK);
    expect(new Set(items.map((i) => i.reason)).size).toBe(BULK);
    expect(items[0].reason).toBe('bulk 0');
    expect(items[BULK - 1].reason).toBe(`bulk ${BULK - 1}`);
    const json = await report(root, `/v1/reports/remote-control-info?${BULK_RANGE}`);
    expect(json.json.rows).toHaveLength(BULK);
    expect(json.json.rows.map((r: { reason: string }) => r.reason)).toEqual(items.map((i) => i.reason));
  });

  const pool = () => (ds.driver as unknown as { master: Pool }).master;

  it('frees its slot and its connection when the client goes away mid-stream', async () => {
    const { res, req } = await openReport(root, `/v1/reports/remote-control-info?${BULK_RANGE}`);
    const first: Buffer = await new Promise((resolve) => {
      res.once('data', resolve);
      res.resume();
    });
    expect(first.length).toBeGreaterThan(0);
    res.pause();
    expect(service.inFlight).toBe(1);
    req.destroy();
    await waitUntil(async () => service.inFlight === 0 && pool().idleCount === pool().totalCount, 10_000, 'the report to stop');
    expect((await rowsOf(root, 'top-viewers')).length).toBe(2);
  });

  it('runs at most REPORT_CONCURRENCY reports at once: 429 with Retry-After, then a free slot when a client leaves', async () => {
    const held = [
      await openReport(root, `/v1/reports/remote-control-info?${BULK_RANGE}`),
      await openReport(root, `/v1/reports/remote-control-info?${BULK_RANGE}&format=csv`),
    ];
    const third = await report(root, `/v1/reports/top-viewers?${RANGE}`);
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBe('2');
    expect(third.json.error.code).toBe('rate_limited');
    for (const h of held) h.req.destroy();
    await waitUntil(async () => service.inFlight === 0, 10_000, 'the held reports to stop');
    expect((await report(root, `/v1/reports/top-viewers?${RANGE}`)).status).toBe(200);
  });

  it('refuses bad input with the error shape, changing nothing', async () => {
    const cases: [Api, string, number, string?][] = [
      [root, '/v1/reports/no-such-report', 404],
      [root, `/v1/reports/sessions-per-day?from=${at(T0 + D)}&to=${at(T0)}`, 400, 'from'],
      [root, `/v1/reports/sessions-per-day?from=${at(T0)}&to=${at(T0 + 101 * D)}`, 400, 'to'],
      [root, '/v1/reports/sessions-per-day?from=yesterday', 400, 'from'],
      [root, '/v1/reports/sessions-per-day?format=xlsx', 400, 'format'],
      [root, '/v1/reports/sessions-per-day?orderBy=1', 400, 'query'],
      [root, `/v1/reports/computers-by-user?${RANGE}`, 400, 'viewerId'],
      [root, `/v1/reports/computers-by-user?viewerId=${w.wsA}`, 404],
      [root, '/v1/reports/sessions-per-day?collectionId=00000000-0000-4000-8000-000000000000', 404],
      [root, '/v1/reports/sessions-per-day?deviceId=00000000-0000-4000-8000-000000000000', 404],
      [narrow, `/v1/reports/sessions-per-day?collectionId=${w.servers}`, 404],
      [narrow, `/v1/reports/remote-control-info?deviceId=${w.wsB}`, 404],
      [plain, '/v1/reports/sessions-per-day', 403],
      [new Api(root.base), '/v1/reports/sessions-per-day', 401],
    ];
    for (const [api, path, status, field] of cases) {
      const r = await report(api, path);
      expect({ path, status: r.status }).toEqual({ path, status });
      expect({ path, code: typeof r.json?.error?.code }).toEqual({ path, code: 'string' });
      if (field)
        expect({ path, fields: [...new Set(r.json.error.details.map((d: { path: string }) => d.path))] }).toEqual({
          path,
          fields: [field],
        });
    }
    // A collection in scope is fine.
    expect((await report(narrow, `/v1/reports/sessions-per-day?collectionId=${w.desks}`)).status).toBe(200);
  });
});
