import { DataSource } from 'typeorm';
import { loadConfig } from '@rcflow/config';
import { verifyAudit } from '@rcflow/audit';
import { Device, Principal, createDataSource, loadEffectiveSettings, loadPrincipalFacts } from '@rcflow/database';
import type { OutboxRelay } from '@rcflow/jobs';
import { SessionIntake, SessionTransitions } from '@rcflow/sessions';
import { SessionsService } from '../sessions/sessions.service';
import { DEMO_RESTART_REASON } from './demo-leftovers';
import { DemoSetup, prepareDemo } from './demo-run';

const AUDIT_KEY = 'demo-seed-spec-audit-key-0123456789abcdef0123456789';
jest.setTimeout(60_000);

let ds: DataSource;
let transitions: SessionTransitions;
let sessions: SessionsService;

beforeAll(async () => {
  ds = createDataSource({ url: null, pgliteDir: 'memory', poolSize: 2 });
  await ds.initialize();
  await ds.runMigrations({ transaction: 'each' });
  const config = loadConfig({ PGLITE_DIR: 'memory', AUDIT_HMAC_KEY: AUDIT_KEY });
  const relay = { kick: () => undefined } as unknown as OutboxRelay;
  transitions = new SessionTransitions(ds, config);
  sessions = new SessionsService(ds, relay, new SessionIntake(ds, relay, config), transitions, config);
});

afterAll(async () => {
  await ds?.destroy();
});

const activeKeys = async () =>
  (
    await ds.query<{ name: string; principal: string }[]>(
      `SELECT k.name, p.name AS principal FROM api_keys k JOIN principals p ON p.id = k.principal_id WHERE k.revoked_at IS NULL ORDER BY p.name`,
    )
  ).map((k) => `${k.principal} ${k.name.split(' ')[0]}`);
const usableTokens = async () =>
  (await ds.query<{ n: number }[]>('SELECT count(*)::int AS n FROM enrolment_tokens WHERE revoked_at IS NULL AND uses < max_uses'))[0]?.n;
const state = async (id: string) => (await ds.query<{ state: string }[]>('SELECT state FROM sessions WHERE id = $1', [id]))[0]?.state;

describe('the demo world', () => {
  let first: DemoSetup;

  it('is seeded once, with keys and enrolment tokens for its agents', async () => {
    first = await prepareDemo(ds, AUDIT_KEY, transitions);
    expect(first.simulatorToken).toMatch(/^rce_/);
    expect(first.demoPcToken).toMatch(/^rce_/);
    expect(first.leftovers).toEqual({ sessions: 0, keys: 0, tokens: 0 });

    const names = (await ds.getRepository(Principal).find()).map((p) => p.name).sort();
    expect(names).toEqual(['HELPDESK', 'alice', 'auditor', 'bob', 'demo-admin', 'desk-auditor', 'helpdesk-bot']);
    const hosts = (await ds.getRepository(Device).find()).map((d) => [d.hostname, d.enrolled]).sort();
    expect(hosts).toEqual([
      ['DEMO-PC', false],
      ['SRV-1', false],
      ['WS-1', false],
      ['WS-2', false],
      ['WS-3', false],
    ]);
    const settings = await loadEffectiveSettings(ds.manager, first.world.devices.ws1);
    expect(settings.values).toMatchObject({ enabled: true, permittedViewers: ['HELPDESK'], accessLevel: 'full' });
    expect(await activeKeys()).toEqual([
      'alice demo',
      'auditor demo',
      'bob demo',
      'demo-admin demo',
      'desk-auditor demo',
      'helpdesk-bot demo',
    ]);
    expect(await usableTokens()).toBe(2);
  });

  it('on restart ends the sessions the last run left on its devices, revokes its keys and unused tokens, and keeps the rest', async () => {
    const { world } = first;
    const alice = (await loadPrincipalFacts(ds.manager, world.principals.alice))!;
    const admin = (await loadPrincipalFacts(ds.manager, world.principals.admin))!;
    const ask = { type: 'remote-control', access: 'full' } as const;
    // WS-1 active (as the first run's banner session stays), WS-2 still waiting, WS-3 long cancelled.
    const active = (await sessions.create(alice, { ...ask, deviceId: world.devices.ws1 }, null)).session.id;
    const snap = (await transitions.snapshot(active))!;
    const moved = await transitions.apply({
      session: snap,
      actor: { id: null, kind: 'system' },
      steps: ['validating', 'eligible', 'pushing_settings', 'awaiting_consent', 'active'].map((to) => ({ to: to as 'active' })),
    });
    expect(moved?.state).toBe('active');
    const waiting = (await sessions.create(alice, { ...ask, deviceId: world.devices.ws2 }, null)).session.id;
    const done = (await sessions.create(alice, { ...ask, deviceId: world.devices.ws3 }, null)).session.id;
    await sessions.cancel(alice, done, 'not needed');
    // A session on a device outside the demo's is not the demo's to end.
    const [srv] = await ds.query<{ id: string }[]>(`SELECT id FROM devices WHERE hostname = 'SRV-1'`);
    const elsewhere = (await sessions.create(admin, { ...ask, deviceId: srv.id }, null)).session.id;

    const second = await prepareDemo(ds, AUDIT_KEY, transitions);
    expect(second.leftovers).toEqual({ sessions: 2, keys: 6, tokens: 2 });
    expect(second.world.principals).toEqual(world.principals);
    expect(second.world.devices).toEqual(world.devices);
    expect(second.world.keys.admin).not.toBe(world.keys.admin);
    expect([await state(active), await state(waiting), await state(done), await state(elsewhere)]).toEqual([
      'ended',
      'cancelled',
      'cancelled',
      'requested',
    ]);
    const events = await ds.query<{ session_id: string; outcome: string; reason: string; actor_id: string }[]>(
      'SELECT session_id, outcome, reason, actor_id FROM audit_events WHERE reason = $1 ORDER BY id',
      [DEMO_RESTART_REASON],
    );
    expect(events).toEqual([
      { session_id: active, outcome: 'ended', reason: DEMO_RESTART_REASON, actor_id: world.principals.admin },
      { session_id: waiting, outcome: 'cancelled', reason: DEMO_RESTART_REASON, actor_id: world.principals.admin },
    ]);
    // The agent holding the active one is told to end it.
    const jobs = await ds.query<{ payload: { sessionId: string } }[]>(`SELECT payload FROM outbox WHERE job_name = 'session.end'`);
    expect(jobs.map((j) => j.payload.sessionId)).toEqual([active]);

    // Only this run's six keys and two tokens are usable; the revocations are audited.
    expect(await activeKeys()).toHaveLength(6);
    expect(await usableTokens()).toBe(2);
    const revoked = await ds.query<{ action: string; n: number }[]>(
      `SELECT action, count(*)::int AS n FROM audit_events WHERE action IN ('api_key.revoked', 'enrolment_token.revoked') GROUP BY action ORDER BY action`,
    );
    expect(revoked).toEqual([
      { action: 'api_key.revoked', n: 6 },
      { action: 'enrolment_token.revoked', n: 2 },
    ]);
    expect((await verifyAudit(ds, AUDIT_KEY)).problems).toEqual([]);
  });

  it("a third start finds nothing left over but the second run's keys and tokens", async () => {
    const third = await prepareDemo(ds, AUDIT_KEY, transitions);
    expect(third.leftovers).toEqual({ sessions: 0, keys: 6, tokens: 2 });
    expect(await activeKeys()).toHaveLength(6);
  });
});
