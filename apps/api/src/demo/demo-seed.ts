import type { DataSource, EntityManager } from 'typeorm';
import { Device, Principal } from '@rcflow/database';
import type { AdminContext } from '../admin/admin-context';
import { createApiKey } from '../admin/api-keys.service';
import { revokeDemoKeys } from './demo-leftovers';
import { createClientSettings, deployClientSettings } from '../admin/client-settings.service';
import { addCollectionMember, createCollection } from '../admin/collections.service';
import { createDevice } from '../admin/devices.service';
import { addGroupMember, createPrincipal } from '../admin/principals.service';
import { assignRole } from '../admin/role-assignments.service';

export interface DemoWorld {
  keys: { admin: string; alice: string; bob: string; helpdeskBot: string; auditor: string; deskAuditor: string };
  /** Keys of earlier runs this start revoked. */
  revokedKeys: number;
  principals: { admin: string; alice: string; bob: string };
  /** WS-1..WS-3 are played by the simulator; DEMO-PC waits for a reference agent the user starts. */
  devices: { ws1: string; ws2: string; ws3: string; demoPc: string };
}

const HOSTS = { ws1: 'WS-1', ws2: 'WS-2', ws3: 'WS-3', demoPc: 'DEMO-PC' } as const;

/** The id of the principal named `name` (without regard to case), or null. */
async function principalId(manager: EntityManager, name: string): Promise<string | null> {
  const p = await manager.getRepository(Principal).createQueryBuilder('p').where('lower(p.name) = lower(:name)', { name }).getOne();
  return p?.id ?? null;
}

/** The id of the device with `hostname` (without regard to case); it was seeded. */
async function deviceId(manager: EntityManager, hostname: string): Promise<string> {
  const d = await manager
    .getRepository(Device)
    .createQueryBuilder('d')
    .where('lower(d.hostname) = lower(:hostname)', { hostname })
    .getOneOrFail();
  return d.id;
}

/**
 * The auditors of the demo, added to a demo database of any age: `auditor` reads everything,
 * `desk-auditor` the Helpdesk Desktops only (a server collection, SRV-1, shows what it does not see).
 */
async function seedAuditors(ctx: AdminContext): Promise<void> {
  if (await principalId(ctx.manager, 'auditor')) return;
  const desks = await ctx.manager.query<{ id: string }[]>(`SELECT id FROM collections WHERE name = 'Helpdesk Desktops'`);
  const auditor = await createPrincipal(ctx, { name: 'auditor', kind: 'user', displayName: 'Auditor (everything)' });
  const deskAuditor = await createPrincipal(ctx, { name: 'desk-auditor', kind: 'user', displayName: 'Auditor (Helpdesk Desktops)' });
  const servers = await createCollection(ctx, { name: 'Servers', description: 'Demo servers (no agent)' });
  const srv = await createDevice(ctx, { hostname: 'SRV-1', enrolled: false, osFamily: 'windows' });
  await addCollectionMember(ctx, servers.id, srv.id);
  await assignRole(ctx, { principalId: auditor.id, role: 'read_only_auditor', collectionIds: null });
  await assignRole(ctx, { principalId: deskAuditor.id, role: 'read_only_auditor', collectionIds: desks.map((d) => d.id) });
}

/**
 * The demo's world: an administrator, an operator (alice, in HELPDESK), a user who is not a
 * permitted viewer (bob), a ticket integration, and three devices in one collection under
 * custom settings. Created once; every start issues fresh API keys, shown once, and revokes the
 * keys earlier starts issued.
 */
export async function seedDemo(ds: DataSource, key: string): Promise<DemoWorld> {
  return ds.transaction(async (manager): Promise<DemoWorld> => {
    const ctx: AdminContext = { manager, auditKey: key, actorId: null };
    if (!(await principalId(manager, 'demo-admin'))) {
      const admin = await createPrincipal(ctx, { name: 'demo-admin', kind: 'user', displayName: 'Demo administrator' });
      const alice = await createPrincipal(ctx, { name: 'alice', kind: 'user', displayName: 'Alice (helpdesk)' });
      const bob = await createPrincipal(ctx, { name: 'bob', kind: 'user', displayName: 'Bob (not a permitted viewer)' });
      const bot = await createPrincipal(ctx, { name: 'helpdesk-bot', kind: 'service', displayName: 'Ticket integration' });
      const helpdesk = await createPrincipal(ctx, { name: 'HELPDESK', kind: 'group' });
      await addGroupMember(ctx, helpdesk.id, alice.id);
      const desks = await createCollection(ctx, { name: 'Helpdesk Desktops', description: 'Demo devices' });
      await assignRole(ctx, { principalId: admin.id, role: 'full_administrator', collectionIds: null });
      await assignRole(ctx, { principalId: helpdesk.id, role: 'remote_tools_operator', collectionIds: [desks.id] });
      await assignRole(ctx, { principalId: bot.id, role: 'ticket_integration', collectionIds: [desks.id] });
      await assignRole(ctx, { principalId: bob.id, role: 'remote_tools_operator', collectionIds: [desks.id] });
      // Registered ahead of their agents: enrolment binds each agent to its device by host name.
      const devices = [];
      for (const hostname of Object.values(HOSTS)) {
        devices.push(await createDevice(ctx, { hostname, enrolled: false, osFamily: 'windows' }));
      }
      for (const d of devices) await addCollectionMember(ctx, desks.id, d.id);
      const rc = await createClientSettings(ctx, {
        name: 'Helpdesk Remote Control',
        order: 1,
        remoteTools: {
          enabled: true,
          firewallExceptionProfiles: ['domain'],
          permittedViewers: ['HELPDESK'],
          accessLevel: 'full',
          permissionRequired: true,
          allowRemCtrlToUnattended: false,
        },
      });
      await deployClientSettings(ctx, rc.id, desks.id);
    }
    await seedAuditors(ctx);
    const ids = {
      admin: (await principalId(manager, 'demo-admin'))!,
      alice: (await principalId(manager, 'alice'))!,
      bob: (await principalId(manager, 'bob'))!,
      bot: (await principalId(manager, 'helpdesk-bot'))!,
      auditor: (await principalId(manager, 'auditor'))!,
      deskAuditor: (await principalId(manager, 'desk-auditor'))!,
    };
    // Keys cannot be shown again (only their hashes are kept): each start issues new ones and
    // revokes those of the runs before, so they do not pile up.
    const revokedKeys = await revokeDemoKeys(ctx, Object.values(ids));
    const label = `demo ${new Date().toISOString()}`;
    const issue = async (id: string) => (await createApiKey(ctx, { principalId: id, name: label })).key;
    return {
      keys: {
        admin: await issue(ids.admin),
        alice: await issue(ids.alice),
        bob: await issue(ids.bob),
        helpdeskBot: await issue(ids.bot),
        auditor: await issue(ids.auditor),
        deskAuditor: await issue(ids.deskAuditor),
      },
      revokedKeys,
      principals: { admin: ids.admin, alice: ids.alice, bob: ids.bob },
      devices: {
        ws1: await deviceId(manager, HOSTS.ws1),
        ws2: await deviceId(manager, HOSTS.ws2),
        ws3: await deviceId(manager, HOSTS.ws3),
        demoPc: await deviceId(manager, HOSTS.demoPc),
      },
    };
  });
}
