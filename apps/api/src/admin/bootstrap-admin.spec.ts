import { DataSource } from 'typeorm';
import { verifyAudit } from '@rcflow/audit';
import { ApiKey, Principal, createDataSource } from '@rcflow/database';
import { AdministratorExists, bootstrapAdmin, fullAdministrators } from './bootstrap-admin';

const AUDIT_KEY = 'bootstrap-admin-spec-audit-key-0123456789abcdef0123';
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

const boot = (name: string, force = false) => ds.transaction((m) => bootstrapAdmin(m, AUDIT_KEY, { name, force }));
const keysOf = async (name: string) => {
  const p = await ds.getRepository(Principal).findOneByOrFail({ name });
  return ds.getRepository(ApiKey).countBy({ principalId: p.id });
};

it('issues the first administrator a key, refuses a second run, and issues another only with --force', async () => {
  expect(await fullAdministrators(ds.manager)).toEqual([]);
  expect(await boot('root')).toMatch(/^rcf_/);
  expect(await fullAdministrators(ds.manager)).toEqual(['root']);

  const refused = boot('root').catch((e: unknown) => e);
  await expect(refused).resolves.toBeInstanceOf(AdministratorExists);
  expect(((await refused) as Error).message).toContain('(root)');
  await expect(boot('other')).rejects.toThrow(/already exists.*--force/);
  expect(await keysOf('root')).toBe(1);
  expect(await ds.getRepository(Principal).countBy({ name: 'other' })).toBe(0);

  expect(await boot('root', true)).toMatch(/^rcf_/);
  expect(await keysOf('root')).toBe(2);
  expect((await verifyAudit(ds, AUDIT_KEY)).ok).toBe(true);
});

it('does not count a disabled administrator', async () => {
  await ds.getRepository(Principal).update({ name: 'root' }, { disabled: true });
  expect(await fullAdministrators(ds.manager)).toEqual([]);
  expect(await boot('second')).toMatch(/^rcf_/);
  expect(await fullAdministrators(ds.manager)).toEqual(['second']);
});
