import { Global, INestApplication, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { buildOpenApiDocument } from '../openapi';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { ConfigModule, loadConfig } from '@rcflow/config';
import { verifyAudit } from '@rcflow/audit';
import { DeviceCredential, createDataSource } from '@rcflow/database';
import { OutboxRelay } from '@rcflow/jobs';
import { AgentSockets } from '../agents/agent-sockets';
import { AuthGuard } from '../auth/auth.guard';
import { ErrorFilter } from '../common/exception.filter';
import { KeyRevocations, LocalKeyRevocations } from '../edge/key-revocations';
import { RateLimits } from '../edge/rate-limits';
import { ConsoleSessions } from '../console/console-sessions';
import { AdminModule } from './admin.module';
import { createApiKey } from './api-keys.service';
import { createPrincipal } from './principals.service';
import { assignRole } from './role-assignments.service';

/*
 * The administration API against an in-memory PGlite database: every route through the real
 * guard, pipes and error filter, and the services' plain functions used directly as the demo seed does.
 */

const AUDIT_KEY = 'admin-spec-audit-key-0123456789abcdef0123456789';
jest.setTimeout(60_000);

let ds: DataSource;
let app: INestApplication;
let adminKey: string;
let adminId: string;
let adminAssignmentId: string;

const http = () => request(app.getHttpServer());
const as = (key: string) => ({
  get: (url: string) => http().get(url).set('Authorization', `Bearer ${key}`),
  post: (url: string, body?: object) => http().post(url).set('Authorization', `Bearer ${key}`).send(body),
  patch: (url: string, body?: object) => http().patch(url).set('Authorization', `Bearer ${key}`).send(body),
  put: (url: string) => http().put(url).set('Authorization', `Bearer ${key}`),
  delete: (url: string) => http().delete(url).set('Authorization', `Bearer ${key}`),
});
const admin = () => as(adminKey);

beforeAll(async () => {
  // In-memory PGlite by default; RCFLOW_ADMIN_SPEC_PG_URL runs the same checks on an empty real PostgreSQL database.
  ds = createDataSource({ url: process.env.RCFLOW_ADMIN_SPEC_PG_URL ?? null, pgliteDir: 'memory', poolSize: 4 });
  await ds.initialize();
  await ds.runMigrations({ transaction: 'each' });
  const bootstrap = await ds.transaction(async (manager) => {
    const ctx = { manager, auditKey: AUDIT_KEY, actorId: null };
    const p = await createPrincipal(ctx, { name: 'root', kind: 'user', displayName: 'Root' });
    const a = await assignRole(ctx, { principalId: p.id, role: 'full_administrator', collectionIds: null });
    const k = await createApiKey(ctx, { principalId: p.id, name: 'bootstrap' });
    return { p, a, k };
  });
  adminKey = bootstrap.k.key;
  adminId = bootstrap.p.id;
  adminAssignmentId = bootstrap.a.id;

  const config = loadConfig({ PGLITE_DIR: 'memory', AUDIT_HMAC_KEY: AUDIT_KEY, RATE_LIMIT_PER_MINUTE: '100000' });
  @Global()
  @Module({ providers: [{ provide: DataSource, useValue: ds }], exports: [DataSource] })
  class TestDatabaseModule {}
  /** The edge without Redis: nothing rate-limited, revocations told within this process. */
  @Global()
  @Module({
    providers: [
      { provide: RateLimits, useValue: { consume: () => Promise.resolve() } },
      { provide: KeyRevocations, useValue: new LocalKeyRevocations() },
      // No console sessions: every call here carries a key.
      { provide: ConsoleSessions, useValue: { resolve: () => Promise.resolve(null) } },
    ],
    exports: [RateLimits, KeyRevocations, ConsoleSessions],
  })
  class TestEdgeModule {}
  // What the API's agents and queue modules give administration: no sockets and no queue here.
  @Global()
  @Module({
    providers: [
      { provide: AgentSockets, useValue: { credentialsRevoked: () => Promise.resolve() } },
      { provide: OutboxRelay, useValue: { kick: () => undefined } },
    ],
    exports: [AgentSockets, OutboxRelay],
  })
  class TestAgentsModule {}
  const moduleRef = await Test.createTestingModule({
    imports: [ConfigModule.forRoot(config), TestDatabaseModule, TestEdgeModule, TestAgentsModule, AdminModule],
    providers: [
      { provide: APP_GUARD, useClass: AuthGuard },
      { provide: APP_FILTER, useClass: ErrorFilter },
    ],
  }).compile();
  // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- Nest declares its options bag as a class
  app = moduleRef.createNestApplication({ logger: false });
  await app.init();
});

afterAll(async () => {
  await app?.close();
  await ds?.destroy();
});

describe('authentication and authorization', () => {
  it('refuses calls without a key', async () => {
    const res = await http().get('/v1/devices');
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('unauthenticated');
  });

  it('lets a read-only auditor read but not write, and a scoped administrator not write', async () => {
    const auditor = await admin().post('/v1/principals', { name: 'auditor', kind: 'user' });
    await admin().post('/v1/role-assignments', { principalId: auditor.body.id, role: 'read_only_auditor', collectionIds: null });
    const key = (await admin().post('/v1/api-keys', { principalId: auditor.body.id, name: 'k' })).body.key;
    expect((await as(key).get('/v1/devices')).status).toBe(200);
    expect((await as(key).post('/v1/collections', { name: 'nope' })).status).toBe(403);

    const coll = await admin().post('/v1/collections', { name: 'scoped-admin-coll' });
    const scoped = await admin().post('/v1/principals', { name: 'scoped-admin', kind: 'user' });
    await admin().post('/v1/role-assignments', { principalId: scoped.body.id, role: 'full_administrator', collectionIds: [coll.body.id] });
    const scopedKey = (await admin().post('/v1/api-keys', { principalId: scoped.body.id, name: 'k' })).body.key;
    const res = await as(scopedKey).post('/v1/role-assignments', {
      principalId: scoped.body.id,
      role: 'full_administrator',
      collectionIds: null,
    });
    expect(res.status).toBe(403);
    expect((await as(scopedKey).get('/v1/collections')).body.items.map((c: { id: string }) => c.id)).toEqual([coll.body.id]);
  });
});

describe('devices and collections', () => {
  let deviceId: string;
  let collectionId: string;

  it('registers a device with defaults and refuses duplicates and unknown fields', async () => {
    const res = await admin().post('/v1/devices', {
      hostname: 'PC-0001',
      domainJoined: true,
      domain: 'CONTOSO',
      osBuild: '10.0.22631',
      agentVersion: '1.2.0',
      localAdministrators: ['CONTOSO\\desktop-admins'],
      lastHeartbeatAt: new Date().toISOString(),
      loggedOnUser: 'CONTOSO\\bob',
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      hostname: 'PC-0001',
      osFamily: 'windows',
      enrolled: true,
      retired: false,
      locked: false,
      collectionIds: [],
    });
    deviceId = res.body.id;
    expect((await admin().post('/v1/devices', { hostname: 'pc-0001' })).status).toBe(409);
    expect((await admin().post('/v1/devices', { hostname: 'PC-0002', state: 'x' })).status).toBe(400);
    expect((await admin().post('/v1/devices', { hostname: 'PC-0002', loggedOnUser: 'a\u0000b' })).status).toBe(400);
    expect((await admin().post('/v1/devices', { hostname: 'PC-0002', agentVersion: 'banana' })).status).toBe(400);
    expect((await admin().post('/v1/devices', { hostname: 'PC-0002', lastHeartbeatAt: '2999-01-01T00:00:00Z' })).status).toBe(400);
    expect((await admin().post('/v1/devices', ['x'])).status).toBe(400);
  });

  it('reads, filters, pages and patches devices', async () => {
    for (const h of ['PC-0002', 'PC-0003', 'LAPTOP-1']) expect((await admin().post('/v1/devices', { hostname: h })).status).toBe(201);
    const pc = await admin().get('/v1/devices?hostname=pc-');
    expect(pc.body.items.map((d: { hostname: string }) => d.hostname)).toEqual(['PC-0001', 'PC-0002', 'PC-0003']);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await admin().get(`/v1/devices?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      seen.push(...res.body.items.map((d: { hostname: string }) => d.hostname));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(['PC-0001', 'PC-0002', 'PC-0003', 'LAPTOP-1']);
    expect((await admin().get('/v1/devices?cursor=bm90IGpzb24')).status).toBe(400);
    expect((await admin().get('/v1/devices?hostname=%25&bogus=1')).status).toBe(400);
    expect((await admin().get('/v1/devices?hostname=%25')).body.items).toEqual([]);

    expect((await admin().get(`/v1/devices/${deviceId}`)).body.hostname).toBe('PC-0001');
    expect((await admin().get('/v1/devices/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await admin().get('/v1/devices/not-a-uuid')).status).toBe(400);

    const patched = await admin().patch(`/v1/devices/${deviceId}`, { locked: true, loggedOnUser: null, retired: true });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ locked: true, loggedOnUser: null, retired: true });
    expect((await admin().patch(`/v1/devices/${deviceId}`, { hostname: 'pc-0002' })).status).toBe(409);
    expect((await admin().patch(`/v1/devices/${deviceId}`, { retired: false })).body.retired).toBe(false);
  });

  it('manages collection membership and refuses deleting a collection in use', async () => {
    const c = await admin().post('/v1/collections', { name: 'Helpdesk desktops', description: 'first floor' });
    expect(c.status).toBe(201);
    expect(c.body).toMatchObject({ name: 'Helpdesk desktops', memberCount: 0 });
    collectionId = c.body.id;
    expect((await admin().post('/v1/collections', { name: 'helpdesk DESKTOPS' })).status).toBe(409);

    const add = await admin().put(`/v1/collections/${collectionId}/members/${deviceId}`);
    expect(add.status).toBe(200);
    expect(add.body).toEqual({ collectionId, deviceId, changed: true });
    expect((await admin().put(`/v1/collections/${collectionId}/members/${deviceId}`)).body.changed).toBe(false);
    expect((await admin().put(`/v1/collections/${collectionId}/members/00000000-0000-4000-8000-000000000000`)).status).toBe(404);
    expect((await admin().get(`/v1/collections/${collectionId}`)).body.memberCount).toBe(1);
    expect((await admin().get(`/v1/collections/${collectionId}/members`)).body.items.map((d: { id: string }) => d.id)).toEqual([deviceId]);
    expect((await admin().get(`/v1/devices?collectionId=${collectionId}`)).body.items).toHaveLength(1);
    expect((await admin().get(`/v1/devices/${deviceId}`)).body.collectionIds).toEqual([collectionId]);

    const refused = await admin().delete(`/v1/collections/${collectionId}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error.details).toEqual({ members: 1, deployments: 0, roleAssignments: 0 });

    const other = await admin().post('/v1/collections', { name: 'to delete' });
    expect((await admin().patch(`/v1/collections/${other.body.id}`, { description: 'soon gone' })).body.description).toBe('soon gone');
    expect((await admin().delete(`/v1/collections/${other.body.id}`)).status).toBe(200);
    expect((await admin().get(`/v1/collections/${other.body.id}`)).status).toBe(404);
  });

  it('computes effective settings from deployed custom sets and protects the default set', async () => {
    const all = await admin().get('/v1/client-settings');
    const def = all.body.items.find((s: { isDefault: boolean }) => s.isDefault);
    expect(def.order).toBe(10000);

    const s = await admin().post('/v1/client-settings', {
      name: 'RC on',
      order: 5,
      remoteTools: { enabled: true, permittedViewers: ['alice'] },
    });
    expect(s.status).toBe(201);
    expect((await admin().post('/v1/client-settings', { name: 'x', order: 5, remoteTools: { bogus: true } })).status).toBe(400);
    expect((await admin().post('/v1/client-settings', { name: 'x', order: 10000 })).status).toBe(400);
    expect((await admin().post('/v1/client-settings', { name: 'rc ON', order: 6 })).status).toBe(409);
    expect((await admin().put(`/v1/client-settings/${s.body.id}/deployments/${collectionId}`)).body.changed).toBe(true);
    expect((await admin().put(`/v1/client-settings/${def.id}/deployments/${collectionId}`)).status).toBe(422);

    const eff = await admin().get(`/v1/devices/${deviceId}/effective-settings`);
    expect(eff.status).toBe(200);
    expect(eff.body.deviceId).toBe(deviceId);
    expect(eff.body.values.enabled).toBe(true);
    expect(eff.body.provenance.enabled.setId).toBe(s.body.id);
    expect(eff.body.provenance.accessLevel.setId).toBe(def.id);
    expect(eff.body.versionHash).toMatch(/^[0-9a-f]{64}$/);

    // Merge patch on a custom set: null removes a setting.
    const p = await admin().patch(`/v1/client-settings/${s.body.id}`, { remoteTools: { permittedViewers: null, accessLevel: 'view' } });
    expect(p.body.remoteTools).toEqual({ enabled: true, accessLevel: 'view' });
    // The default set stays complete and keeps its order.
    expect((await admin().patch(`/v1/client-settings/${def.id}`, { remoteTools: { enabled: null } })).status).toBe(400);
    expect((await admin().patch(`/v1/client-settings/${def.id}`, { order: 5 })).status).toBe(422);
    const d2 = await admin().patch(`/v1/client-settings/${def.id}`, { remoteTools: { audibleSignal: 'none' } });
    expect(d2.body.remoteTools.audibleSignal).toBe('none');
    expect(d2.body.order).toBe(10000);
    expect((await admin().delete(`/v1/client-settings/${def.id}`)).status).toBe(422);

    const refused = await admin().delete(`/v1/collections/${collectionId}`);
    expect(refused.body.error.details).toMatchObject({ deployments: 1 });
    const del = await admin().delete(`/v1/client-settings/${s.body.id}`);
    expect(del.status).toBe(200);
    expect(await ds.query('SELECT * FROM settings_deployments WHERE settings_id = $1', [s.body.id])).toEqual([]);
    expect((await admin().get(`/v1/devices/${deviceId}/effective-settings`)).body.values.enabled).toBe(false);
  });

  it("hides devices and collections outside a scoped reader's collections", async () => {
    const p = await admin().post('/v1/principals', { name: 'scoped-auditor', kind: 'user' });
    const other = await admin().post('/v1/collections', { name: 'other scope' });
    await admin().post('/v1/role-assignments', { principalId: p.body.id, role: 'read_only_auditor', collectionIds: [other.body.id] });
    const key = (await admin().post('/v1/api-keys', { principalId: p.body.id, name: 'k' })).body.key;
    expect((await as(key).get(`/v1/devices/${deviceId}`)).status).toBe(404);
    expect((await as(key).get('/v1/devices')).body.items).toEqual([]);
    expect((await as(key).get(`/v1/collections/${collectionId}`)).status).toBe(404);

    const inside = (await admin().post('/v1/devices', { hostname: 'PC-SCOPED' })).body;
    await admin().put(`/v1/collections/${other.body.id}/members/${inside.id}`);
    expect((await as(key).get('/v1/devices')).body.items.map((d: { id: string }) => d.id)).toEqual([inside.id]);
    expect((await as(key).get(`/v1/devices/${inside.id}`)).body.collectionIds).toEqual([other.body.id]);
    expect((await as(key).get(`/v1/collections/${other.body.id}/members`)).body.items.map((d: { id: string }) => d.id)).toEqual([
      inside.id,
    ]);
  });
});

describe('principals, groups, roles and keys', () => {
  it('creates principals with case-insensitive unique names and manages nested groups without cycles', async () => {
    const alice = await admin().post('/v1/principals', { name: 'CONTOSO\\alice', kind: 'user', displayName: 'Alice' });
    expect(alice.status).toBe(201);
    expect(alice.body).toMatchObject({ name: 'CONTOSO\\alice', kind: 'user', displayName: 'Alice', disabled: false });
    expect((await admin().post('/v1/principals', { name: 'contoso\\ALICE', kind: 'user' })).status).toBe(409);
    expect((await admin().post('/v1/principals', { name: 'bad/name', kind: 'user' })).status).toBe(400);
    expect((await admin().post('/v1/principals', { name: 'x', kind: 'robot' })).status).toBe(400);

    const a = (await admin().post('/v1/principals', { name: 'group-a', kind: 'group' })).body;
    const b = (await admin().post('/v1/principals', { name: 'group-b', kind: 'group' })).body;
    expect((await admin().put(`/v1/principals/${a.id}/members/${b.id}`)).body).toEqual({ groupId: a.id, memberId: b.id, changed: true });
    expect((await admin().put(`/v1/principals/${b.id}/members/${alice.body.id}`)).body.changed).toBe(true);
    expect((await admin().put(`/v1/principals/${b.id}/members/${a.id}`)).status).toBe(409);
    expect((await admin().put(`/v1/principals/${a.id}/members/${a.id}`)).status).toBe(422);
    expect((await admin().put(`/v1/principals/${alice.body.id}/members/${a.id}`)).status).toBe(422);

    const detail = (await admin().get(`/v1/principals/${alice.body.id}`)).body;
    expect(detail.groups.map((g: { name: string }) => g.name)).toEqual(['group-b']);
    expect(detail.allGroups.map((g: { name: string }) => g.name)).toEqual(['group-a', 'group-b']);
    expect(detail.members).toBeUndefined();
    expect((await admin().get(`/v1/principals/${a.id}`)).body.members.map((m: { id: string }) => m.id)).toEqual([b.id]);
    expect((await admin().get('/v1/principals?kind=group&name=GROUP-')).body.items).toHaveLength(2);
    expect((await admin().delete(`/v1/principals/${b.id}/members/${alice.body.id}`)).body.changed).toBe(true);
    expect((await admin().delete(`/v1/principals/${b.id}/members/${alice.body.id}`)).body.changed).toBe(false);
    expect((await admin().patch(`/v1/principals/${alice.body.id}`, { displayName: 'Alice A.' })).body.displayName).toBe('Alice A.');
    expect((await admin().patch(`/v1/principals/${alice.body.id}`, { name: 'renamed' })).status).toBe(400);
  });

  it('checks role assignment references and refuses locking everybody out', async () => {
    const p = (await admin().post('/v1/principals', { name: 'ops', kind: 'user' })).body;
    const missing = await admin().post('/v1/role-assignments', {
      principalId: p.id,
      role: 'remote_tools_operator',
      collectionIds: ['00000000-0000-4000-8000-000000000000'],
    });
    expect(missing.status).toBe(422);
    expect((await admin().post('/v1/role-assignments', { principalId: p.id, role: 'god', collectionIds: null })).status).toBe(400);
    expect((await admin().post('/v1/role-assignments', { principalId: p.id, role: 'remote_tools_operator' })).status).toBe(400);
    const ra = await admin().post('/v1/role-assignments', { principalId: p.id, role: 'remote_tools_operator', collectionIds: null });
    expect(ra.status).toBe(201);
    expect(ra.body).toMatchObject({ principalId: p.id, principalName: 'ops', role: 'remote_tools_operator', collectionIds: null });
    expect(
      (await admin().post('/v1/role-assignments', { principalId: p.id, role: 'remote_tools_operator', collectionIds: null })).status,
    ).toBe(409);
    expect((await admin().get(`/v1/role-assignments?principalId=${p.id}`)).body.items).toHaveLength(1);
    expect((await admin().delete(`/v1/role-assignments/${ra.body.id}`)).status).toBe(200);
    expect((await admin().delete(`/v1/role-assignments/${ra.body.id}`)).status).toBe(404);

    expect((await admin().delete(`/v1/role-assignments/${adminAssignmentId}`)).status).toBe(409);
    expect((await admin().patch(`/v1/principals/${adminId}`, { disabled: true })).status).toBe(409);
    // An empty group holding the role does not count as someone who can administer.
    const g = (await admin().post('/v1/principals', { name: 'empty-admins', kind: 'group' })).body;
    await admin().post('/v1/role-assignments', { principalId: g.id, role: 'full_administrator', collectionIds: null });
    expect((await admin().delete(`/v1/role-assignments/${adminAssignmentId}`)).status).toBe(409);
  });

  it('issues keys shown once, lists them without secrets and revokes them idempotently', async () => {
    const svc = (await admin().post('/v1/principals', { name: 'servicenow', kind: 'service' })).body;
    await admin().post('/v1/role-assignments', { principalId: svc.id, role: 'read_only_auditor', collectionIds: null });
    const created = await admin().post('/v1/api-keys', { principalId: svc.id, name: 'snow', expiresAt: '2999-01-01T00:00:00Z' });
    expect(created.status).toBe(201);
    expect(Object.keys(created.body).sort()).toEqual(['expiresAt', 'id', 'key', 'name', 'principalId']);
    expect(created.body.key).toMatch(/^rcf_[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}$/);
    expect((await admin().post('/v1/api-keys', { principalId: svc.id, name: 'old', expiresAt: '2001-01-01T00:00:00Z' })).status).toBe(400);
    const group = (await admin().post('/v1/principals', { name: 'key-group', kind: 'group' })).body;
    expect((await admin().post('/v1/api-keys', { principalId: group.id, name: 'g' })).status).toBe(422);
    expect((await admin().post('/v1/api-keys', { principalId: '00000000-0000-4000-8000-000000000000', name: 'g' })).status).toBe(422);

    const list = await admin().get(`/v1/api-keys?principalId=${svc.id}`);
    expect(list.body.items).toEqual([expect.objectContaining({ id: created.body.id, status: 'active', revokedAt: null })]);
    expect(JSON.stringify(list.body)).not.toMatch(/hash|secret|rcf_/i);

    const revoked = await admin().delete(`/v1/api-keys/${created.body.id}`);
    expect(revoked.body).toMatchObject({ status: 'revoked', changed: true });
    const again = await admin().delete(`/v1/api-keys/${created.body.id}`);
    expect(again.body).toMatchObject({ revokedAt: revoked.body.revokedAt, changed: false });
    expect((await as(created.body.key).get('/v1/devices')).status).toBe(401);
  });
});

describe('docs', () => {
  it('describes the request bodies from the zod schemas', () => {
    const doc = buildOpenApiDocument(app);
    const body = (doc.paths['/v1/devices'].post!.requestBody as { content: Record<string, { schema: any }> }).content['application/json'];
    expect(body.schema.properties.hostname).toBeDefined();
    expect(body.schema.required).toEqual(['hostname']);
    expect(body.schema.additionalProperties).toBe(false);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/principals/{groupId}/members/{memberId}', '/v1/client-settings/{id}/deployments/{collectionId}']),
    );
  });
});

describe('audit', () => {
  it('records one event per change on the target entity stream, without secrets, and verifies', async () => {
    const events: { stream: string; action: string; actor_kind: string; data: unknown }[] = await ds.query(
      'SELECT stream, action, actor_kind, data FROM audit_events ORDER BY id',
    );
    expect(events[0]).toMatchObject({ action: 'principal.created', actor_kind: 'system' });
    const actions = new Set(events.map((e) => e.action));
    for (const a of [
      'device.created',
      'device.updated',
      'collection.created',
      'collection.member_added',
      'collection.deleted',
      'settings.created',
      'settings.deployed',
      'settings.updated',
      'settings.deleted',
      'principal.member_added',
      'principal.member_removed',
      'role_assignment.created',
      'role_assignment.deleted',
      'api_key.created',
      'api_key.revoked',
    ]) {
      expect(actions).toContain(a);
    }
    expect(events.every((e) => /^(device|collection|settings|principal|role_assignment|api_key):[0-9a-f-]{36}$/.test(e.stream))).toBe(true);
    expect(JSON.stringify(events)).not.toMatch(/rcf_|secret|hash/i);
    expect(events.filter((e) => e.action === 'api_key.revoked')).toHaveLength(1);
    const verification = await verifyAudit(ds, AUDIT_KEY);
    expect(verification.ok).toBe(true);
  });
});

// After 'audit': its events are on enrolment streams.
describe('enrolment tokens and device credentials', () => {
  it('issues tokens shown once, lists them without secrets and revokes them', async () => {
    const created = await admin().post('/v1/enrolment-tokens', { hostname: 'PC-ENROL', maxUses: 2, expiresInSeconds: 600 });
    expect(created.status).toBe(201);
    expect(Object.keys(created.body).sort()).toEqual(['collectionId', 'deviceId', 'expiresAt', 'hostname', 'id', 'maxUses', 'token']);
    expect(created.body).toMatchObject({ hostname: 'PC-ENROL', maxUses: 2 });
    expect(created.body.token).toMatch(/^rce_[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}$/);
    expect((await admin().post('/v1/enrolment-tokens', { maxUses: 0 })).status).toBe(400);
    const defaults = await admin().post('/v1/enrolment-tokens', {});
    expect(defaults.body).toMatchObject({ hostname: null, maxUses: 1 });

    const list = await admin().get('/v1/enrolment-tokens');
    expect(list.body.items.map((t: { id: string }) => t.id)).toEqual([defaults.body.id, created.body.id]);
    expect(list.body.items[1]).toEqual({
      id: created.body.id,
      hostname: 'PC-ENROL',
      deviceId: null,
      collectionId: null,
      maxUses: 2,
      uses: 0,
      expiresAt: created.body.expiresAt,
      revokedAt: null,
      createdAt: expect.any(String),
    });
    expect(JSON.stringify(list.body)).not.toMatch(/hash|secret|rce_/i);

    expect((await admin().delete(`/v1/enrolment-tokens/${created.body.id}`)).body).toEqual({ id: created.body.id, revoked: true });
    const revokedAt = (await admin().get('/v1/enrolment-tokens')).body.items[1].revokedAt;
    expect(revokedAt).toEqual(expect.any(String));
    expect((await admin().delete(`/v1/enrolment-tokens/${created.body.id}`)).status).toBe(200);
    expect((await admin().get('/v1/enrolment-tokens')).body.items[1].revokedAt).toBe(revokedAt);
    expect((await admin().delete('/v1/enrolment-tokens/00000000-0000-4000-8000-000000000000')).status).toBe(404);
  });

  it("revokes a device's credentials", async () => {
    const device = (await admin().post('/v1/devices', { hostname: 'PC-CRED' })).body;
    await ds.getRepository(DeviceCredential).insert({ id: randomUUID(), deviceId: device.id, secretHash: 'x' });
    const first = await admin().post(`/v1/devices/${device.id}/credentials/revoke`);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ deviceId: device.id, revoked: 1 });
    expect((await admin().post(`/v1/devices/${device.id}/credentials/revoke`)).body).toEqual({ deviceId: device.id, revoked: 0 });
    expect((await admin().post('/v1/devices/00000000-0000-4000-8000-000000000000/credentials/revoke')).status).toBe(404);
    const events: { action: string; data: { revoked: number } }[] = await ds.query(
      `SELECT action, data FROM audit_events WHERE stream = $1 AND action = 'device.credentials_revoked' ORDER BY id`,
      [`device:${device.id}`],
    );
    expect(events.map((e) => e.data.revoked)).toEqual([1, 0]);
  });
});

// Last: it removes the bootstrap administrator's role.
describe('concurrency', () => {
  it('lets only one of two crossing group additions through, so no cycle forms', async () => {
    const x = (await admin().post('/v1/principals', { name: 'race-x', kind: 'group' })).body;
    const y = (await admin().post('/v1/principals', { name: 'race-y', kind: 'group' })).body;
    const results = await Promise.all([
      admin().put(`/v1/principals/${x.id}/members/${y.id}`),
      admin().put(`/v1/principals/${y.id}/members/${x.id}`),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
  });

  it('keeps one administrator when two remove each other at the same time', async () => {
    const ids: string[] = [];
    const keys: string[] = [];
    for (const name of ['admin-2', 'admin-3']) {
      const p = (await admin().post('/v1/principals', { name, kind: 'user' })).body;
      ids.push(
        (await admin().post('/v1/role-assignments', { principalId: p.id, role: 'full_administrator', collectionIds: null })).body.id,
      );
      keys.push((await admin().post('/v1/api-keys', { principalId: p.id, name: 'k' })).body.key);
    }
    expect((await admin().delete(`/v1/role-assignments/${adminAssignmentId}`)).status).toBe(200);
    const results = await Promise.all(ids.map((id) => as(keys[0]).delete(`/v1/role-assignments/${id}`)));
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
  });
});
