import type { DataSource, EntityManager } from 'typeorm';
import {
  addCollectionMember,
  addGroupMember,
  assignRole,
  createApiKey,
  createClientSettings,
  createCollection,
  createDevice,
  createPrincipal,
  deployClientSettings,
} from '../admin/admin-store';

export interface DemoWorld {
  keys: { admin: string; alice: string; bob: string; helpdeskBot: string };
  principals: { admin: string; alice: string; bob: string };
  /** WS-1..WS-3 are played by the simulator; DEMO-PC waits for a reference agent the user starts. */
  devices: { ws1: string; ws2: string; ws3: string; demoPc: string };
}

const HOSTS = { ws1: 'WS-1', ws2: 'WS-2', ws3: 'WS-3', demoPc: 'DEMO-PC' } as const;

async function idOf(tx: EntityManager, table: 'principals' | 'devices', column: string, value: string): Promise<string | null> {
  const [row] = await tx.query(`SELECT id FROM ${table} WHERE lower(${column}) = lower($1)`, [value]);
  return row?.id ?? null;
}

/**
 * The demo's world: an administrator, an operator (alice, in HELPDESK), a user who is not a
 * permitted viewer (bob), a ticket integration, and three devices in one collection under
 * custom settings. Created once; every start issues fresh API keys, shown once.
 */
export async function seedDemo(ds: DataSource, key: string): Promise<DemoWorld> {
  return ds.transaction(async (tx) => {
    if (!(await idOf(tx, 'principals', 'name', 'demo-admin'))) {
      const admin = await createPrincipal(tx, key, null, { name: 'demo-admin', kind: 'user', displayName: 'Demo administrator' });
      const alice = await createPrincipal(tx, key, null, { name: 'alice', kind: 'user', displayName: 'Alice (helpdesk)' });
      await createPrincipal(tx, key, null, { name: 'bob', kind: 'user', displayName: 'Bob (not a permitted viewer)' });
      const bot = await createPrincipal(tx, key, null, { name: 'helpdesk-bot', kind: 'service', displayName: 'Ticket integration' });
      const helpdesk = await createPrincipal(tx, key, null, { name: 'HELPDESK', kind: 'group' });
      await addGroupMember(tx, key, null, helpdesk.id, alice.id);
      const desks = await createCollection(tx, key, null, { name: 'Helpdesk Desktops', description: 'Demo devices' });
      await assignRole(tx, key, null, { principalId: admin.id, role: 'full_administrator', collectionIds: null });
      await assignRole(tx, key, null, { principalId: helpdesk.id, role: 'remote_tools_operator', collectionIds: [desks.id] });
      await assignRole(tx, key, null, { principalId: bot.id, role: 'ticket_integration', collectionIds: [desks.id] });
      const bobId = (await idOf(tx, 'principals', 'name', 'bob'))!;
      await assignRole(tx, key, null, { principalId: bobId, role: 'remote_tools_operator', collectionIds: [desks.id] });
      // Registered ahead of their agents: enrolment binds each agent to its device by host name.
      const devices = [];
      for (const hostname of Object.values(HOSTS)) {
        devices.push(await createDevice(tx, key, null, { hostname, enrolled: false, osFamily: 'windows' }));
      }
      for (const d of devices) await addCollectionMember(tx, key, null, desks.id, d.id);
      const rc = await createClientSettings(tx, key, null, {
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
      await deployClientSettings(tx, key, null, rc.id, desks.id);
    }
    const ids = {
      admin: (await idOf(tx, 'principals', 'name', 'demo-admin'))!,
      alice: (await idOf(tx, 'principals', 'name', 'alice'))!,
      bob: (await idOf(tx, 'principals', 'name', 'bob'))!,
      bot: (await idOf(tx, 'principals', 'name', 'helpdesk-bot'))!,
    };
    const label = `demo ${new Date().toISOString()}`;
    const issue = async (principalId: string) => (await createApiKey(tx, key, null, { principalId, name: label })).key;
    return {
      keys: { admin: await issue(ids.admin), alice: await issue(ids.alice), bob: await issue(ids.bob), helpdeskBot: await issue(ids.bot) },
      principals: { admin: ids.admin, alice: ids.alice, bob: ids.bob },
      devices: {
        ws1: (await idOf(tx, 'devices', 'hostname', HOSTS.ws1))!,
        ws2: (await idOf(tx, 'devices', 'hostname', HOSTS.ws2))!,
        ws3: (await idOf(tx, 'devices', 'hostname', HOSTS.ws3))!,
        demoPc: (await idOf(tx, 'devices', 'hostname', HOSTS.demoPc))!,
      },
    };
  });
}
