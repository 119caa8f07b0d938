import { DataSource } from 'typeorm';
import { loadConfig } from '@rcflow/config';
import { verifyAudit } from '@rcflow/audit';
import { createDataSource, loadPrincipalFacts } from '@rcflow/database';
import type { PrincipalFacts } from '@rcflow/domain';
import type { OutboxRelay } from '@rcflow/jobs';
import { SessionsService } from './sessions.service';
import { SessionIntake, SessionTransitions } from '@rcflow/sessions';

/*
 * Intake and cancel on the embedded PGlite database, where statements are not prepared and every
 * query shares one connection (test/integration/sessions-intake.spec.ts covers PostgreSQL).
 */

const AUDIT_KEY = 'sessions-spec-audit-key-0123456789abcdef012345';
jest.setTimeout(60_000);

let ds: DataSource;
let service: SessionsService;
let alice: PrincipalFacts;
const ids = {} as { desks: string; pc: string; srv: string; alice: string };

beforeAll(async () => {
  ds = createDataSource({ url: null, pgliteDir: 'memory', poolSize: 1 });
  await ds.initialize();
  await ds.runMigrations({ transaction: 'each' });
  const config = loadConfig({ PGLITE_DIR: 'memory', AUDIT_HMAC_KEY: AUDIT_KEY });
  const relay = { kick: () => undefined } as unknown as OutboxRelay;
  service = new SessionsService(ds, relay, new SessionIntake(ds, relay, config), new SessionTransitions(ds, config), config);
  const one = async (sql: string, params: unknown[] = []) => (await ds.query<{ id: string }[]>(sql, params))[0].id;
  ids.desks = await one(`INSERT INTO collections (name) VALUES ('Desks') RETURNING id`);
  ids.pc = await one(`INSERT INTO devices (hostname, os_family) VALUES ('PC-1', 'windows') RETURNING id`);
  ids.srv = await one(`INSERT INTO devices (hostname, os_family) VALUES ('SRV-1', 'windows') RETURNING id`);
  await ds.query('INSERT INTO collection_members (collection_id, device_id) VALUES ($1, $2)', [ids.desks, ids.pc]);
  ids.alice = await one(`INSERT INTO principals (name, kind) VALUES ('alice', 'user') RETURNING id`);
  await ds.query(`INSERT INTO role_assignments (principal_id, role, collection_ids) VALUES ($1, 'remote_tools_operator', $2)`, [
    ids.alice,
    [ids.desks],
  ]);
  alice = (await loadPrincipalFacts(ds.manager, ids.alice))!;
});

afterAll(async () => {
  await ds?.destroy();
});

describe('SessionsService on PGlite', () => {
  it('accepts, replays a key, refuses an out-of-scope device, cancels, and the audit chain verifies', async () => {
    const body = { deviceId: ids.pc, type: 'remote-control', access: 'full', reason: 'printer' } as const;
    const [a, b, c] = await Promise.all([
      service.create(alice, body, 'K-1'),
      service.create(alice, body, 'K-1'),
      service.create(alice, body, null),
    ]);
    expect(a.session.id).toBe(b.session.id);
    expect([a.replayed, b.replayed].sort()).toEqual([false, true]);
    expect(c.session.id).not.toBe(a.session.id);
    await expect(service.create(alice, { ...body, deviceId: ids.srv }, null)).rejects.toMatchObject({ status: 404 });
    const cancelled = await service.cancel(alice, c.session.id, 'called back');
    expect(cancelled).toMatchObject({ state: 'cancelled', version: 2 });
    expect(await service.get(alice, c.session.id)).toEqual(cancelled);
    expect((await ds.query<{ n: number }[]>('SELECT count(*)::int AS n FROM sessions'))[0]?.n).toBe(2);
    expect((await verifyAudit(ds, AUDIT_KEY)).problems).toEqual([]);
  });
});
