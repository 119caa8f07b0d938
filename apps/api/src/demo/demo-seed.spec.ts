import { DataSource } from 'typeorm';
import { verifyAudit } from '@rcflow/audit';
import { Device, Principal, createDataSource, loadEffectiveSettings } from '@rcflow/database';
import { prepareDemo } from './demo-run';

const AUDIT_KEY = 'demo-seed-spec-audit-key-0123456789abcdef0123456789';
jest.setTimeout(60_000);

let ds: DataSource;

beforeAll(async () => {
  ds = createDataSource({ url: null, pgliteDir: 'memory', poolSize: 2 });
  await ds.initialize();
  await ds.runMigrations({ transaction: 'each' });
});

afterAll(async () => {
  await ds?.destroy();
});

it('seeds the demo world once and issues fresh keys and enrolment tokens on every start', async () => {
  const first = await prepareDemo(ds, AUDIT_KEY);
  const second = await prepareDemo(ds, AUDIT_KEY);
  expect(second.world.principals).toEqual(first.world.principals);
  expect(second.world.devices).toEqual(first.world.devices);
  expect(second.world.keys.admin).not.toBe(first.world.keys.admin);
  expect(first.simulatorToken).toMatch(/^rce_/);
  expect(first.demoPcToken).toMatch(/^rce_/);

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
  const tokens: { created_by: string }[] = await ds.query('SELECT created_by FROM enrolment_tokens');
  expect(tokens.map((t) => t.created_by)).toEqual(Array(4).fill(first.world.principals.admin));
  expect((await verifyAudit(ds, AUDIT_KEY)).ok).toBe(true);
});
