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
  principals: { alice: string; bob: string };
  devices: { attended: string; locked: string; kiosk: string };
}

const HOSTS = { attended: 'WS-0001', locked: 'WS-0002', kiosk: 'KIOSK-01' } as const;

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
      const now = new Date().toISOString();
      const common = { osFamily: 'windows' as const, osBuild: '10.0.22631', agentVersion: '1.4.0', domainJoined: true, domain: 'CONTOSO', lastHeartbeatAt: now };
      const devices = [
        await createDevice(tx, key, null, { hostname: HOSTS.attended, fqdn: 'ws-0001.contoso.test', loggedOnUser: 'CONTOSO\\carol', ...common }),
        await createDevice(tx, key, null, { hostname: HOSTS.locked, fqdn: 'ws-0002.contoso.test', loggedOnUser: 'CONTOSO\\dave', locked: true, ...common }),
        await createDevice(tx, key, null, { hostname: HOSTS.kiosk, fqdn: 'kiosk-01.contoso.test', loggedOnUser: null, ...common }),
      ];
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
      principals: { alice: ids.alice, bob: ids.bob },
      devices: {
        attended: (await idOf(tx, 'devices', 'hostname', HOSTS.attended))!,
        locked: (await idOf(tx, 'devices', 'hostname', HOSTS.locked))!,
        kiosk: (await idOf(tx, 'devices', 'hostname', HOSTS.kiosk))!,
      },
    };
  });
}

/**
 * Until agents connect over their own channel, the demo's devices are played by the loopback
 * agent; this keeps their presence fresh as their heartbeats would.
 */
export function keepDemoDevicesPresent(ds: DataSource, world: DemoWorld, everyMs = 30_000): NodeJS.Timeout {
  const ids = Object.values(world.devices);
  const t = setInterval(() => {
    ds.query('UPDATE devices SET last_heartbeat_at = now() WHERE id = ANY($1)', [ids]).catch(() => undefined);
  }, everyMs);
  t.unref();
  void ds.query('UPDATE devices SET last_heartbeat_at = now() WHERE id = ANY($1)', [ids]);
  return t;
}
