import { Api } from '../support/http';
import { OperatorWorld, Stack, addDevice, seedOperatorWorld, startStack } from '../support/stack';
import { tearDown } from '../support/teardown';

jest.setTimeout(180_000);

/**
 * The access review against the real API process and PostgreSQL: a device's principals and
 * chains, a principal's devices streamed, the check matching the dry run, and a collection-scoped
 * auditor who neither finds nor lists a device outside its scope.
 */
describe('access review (one api process, a worker)', () => {
  let stack: Stack;
  let starting: Promise<Stack> | undefined;
  let world: OperatorWorld;
  let admin: Api;
  let auditor: Api;
  let deskAuditor: Api;
  const ids: Record<string, string> = {};
  const keys: Record<string, string> = {};

  const mk = async (path: string, body: unknown) => {
    const r = await admin.post(path, body);
    if (r.status !== 201) throw new Error(`${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.id as string;
  };
  const user = async (name: string, role: string | null, collectionIds: string[] | null) => {
    const id = await mk('/v1/principals', { name, kind: 'user' });
    if (role) await mk('/v1/role-assignments', { principalId: id, role, collectionIds });
    keys[name] = (await admin.post('/v1/api-keys', { principalId: id, name: 'ar' })).body.key;
    return id;
  };

  beforeAll(async () => {
    stack = await (starting = startStack('access', { RATE_LIMIT_PER_MINUTE: '1000000' }));
    admin = stack.admin;
    // alice ∈ HELPDESK (operator on Desks, permitted viewer of "Desks RC"); bob operator on Desks, named nowhere.
    world = await seedOperatorWorld(admin);
    ids.auditor = await user('ar-auditor', 'read_only_auditor', null);
    ids.deskAuditor = await user('ar-desk-auditor', 'read_only_auditor', [world.ids.desks]);
    auditor = admin.as(keys['ar-auditor']);
    deskAuditor = admin.as(keys['ar-desk-auditor']);
    // carol is in HELPDESK through T1 (nested); dave holds the role and is a local administrator of WS-A.
    ids.t1 = await mk('/v1/principals', { name: 'T1', kind: 'group' });
    ids.carol = await user('carol', null, null);
    expect((await admin.put(`/v1/principals/${ids.t1}/members/${ids.carol}`)).status).toBe(200);
    expect((await admin.put(`/v1/principals/${world.ids.helpdesk}/members/${ids.t1}`)).status).toBe(200);
    ids.dave = await user('dave', 'remote_tools_operator', [world.ids.desks]);
    ids.wsA = await addDevice(admin, world.ids.desks, 'AR-WS-A', { localAdministrators: ['AR-WS-A\\Administrator', 'DAVE'] });
    ids.wsB = await addDevice(admin, world.ids.desks, 'AR-WS-B');
    // Servers: alice holds the role there too and is a permitted viewer with view-only access.
    ids.srv = await addDevice(admin, world.ids.servers, 'AR-SRV-1');
    await mk('/v1/role-assignments', { principalId: world.ids.alice, role: 'remote_tools_operator', collectionIds: [world.ids.servers] });
    ids.srvSettings = await mk('/v1/client-settings', {
      name: 'Servers view',
      order: 7,
      remoteTools: { enabled: true, accessLevel: 'view', permittedViewers: ['alice'] },
    });
    expect((await admin.put(`/v1/client-settings/${ids.srvSettings}/deployments/${world.ids.servers}`)).status).toBe(200);
  });
  afterAll(() => tearDown({ stack: async () => (stack ?? (await starting?.catch(() => undefined)))?.stop() }));

  const summary = (entries: { principal: { name: string }; sessionType: string; access: string }[]) =>
    entries.map((e) => `${e.principal.name} ${e.sessionType} ${e.access}`).sort();

  it('lists exactly the principals who can reach a device, each with the chain that grants it', async () => {
    const r = await auditor.get(`/v1/access-review/devices/${ids.wsA}`);
    expect(r.status).toBe(200);
    expect(r.body.device).toEqual({ id: ids.wsA, hostname: 'AR-WS-A' });
    expect(r.body.presenceNotConsidered).toBe(true);
    // bob holds the role but is no permitted viewer; remote assistance and desktop are not managed.
    expect(summary(r.body.entries)).toEqual(['alice remote-control full', 'carol remote-control full', 'dave remote-control full']);
    expect(r.body.sessionTypes['remote-assistance'].access).toBeNull();

    const carol = r.body.entries.find((e: { principal: { name: string } }) => e.principal.name === 'carol');
    expect(carol.principal).toEqual({ id: ids.carol, name: 'carol', kind: 'user' });
    expect(carol.via.map((s: { step: string }) => s.step)).toEqual(['role_assignment', 'collection', 'permitted_viewer', 'settings']);
    expect(carol.via[0]).toMatchObject({
      role: 'remote_tools_operator',
      heldBy: { id: world.ids.helpdesk, name: 'HELPDESK', kind: 'group' },
      membership: ['carol', 'T1', 'HELPDESK'],
      scope: [{ id: world.ids.desks, name: 'Desks' }],
    });
    expect(carol.via[1]).toMatchObject({ id: world.ids.desks, name: 'Desks' });
    expect(carol.via[2]).toMatchObject({
      entry: 'HELPDESK',
      group: 'HELPDESK',
      setting: { setId: world.ids.settings, setName: 'Desks RC' },
    });

    // The settings step names the sets as the effective settings give them.
    const effective = (await auditor.get(`/v1/devices/${ids.wsA}/effective-settings`)).body;
    const settingsStep = carol.via[3];
    for (const key of ['enabled', 'accessLevel', 'permittedViewers']) {
      expect(settingsStep.values[key]).toEqual({ key, value: effective.values[key], ...effective.provenance[key] });
    }

    const dave = r.body.entries.find((e: { principal: { name: string } }) => e.principal.name === 'dave');
    expect(dave.via[2]).toMatchObject({
      step: 'local_administrator',
      entry: 'DAVE',
      setting: { key: 'allowLocalAdminToDoRemoteControl', value: true },
    });
  });

  it("streams a principal's devices as NDJSON, pages them as JSON and exports them as CSV", async () => {
    const res = await fetch(`${auditor.base}/v1/access-review/principals/${world.ids.alice}`, {
      headers: { authorization: `Bearer ${keys['ar-auditor']}`, accept: 'application/x-ndjson' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/x-ndjson');
    const lines = (await res.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const byHost = Object.fromEntries(lines.map((l) => [l.device.hostname, summary(l.entries)]));
    expect(byHost).toEqual({
      // the two desks, and the server with view-only access
      'AR-WS-A': ['alice remote-control full'],
      'AR-WS-B': ['alice remote-control full'],
      'AR-SRV-1': ['alice remote-control view'],
    });
    const srv = lines.find((l) => l.device.hostname === 'AR-SRV-1');
    expect(srv.entries[0].via[0]).toMatchObject({ heldBy: { name: 'alice' }, scope: [{ name: 'Servers' }] });
    expect(srv.entries[0].via[2]).toMatchObject({ step: 'permitted_viewer', entry: 'alice', group: null });

    // JSON, one device per page, following the cursor: the same devices in the same (id) order.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: { items: { device: { id: string } }[]; nextCursor: string | null } } = await auditor.get(
        `/v1/access-review/principals/${world.ids.alice}?limit=1${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(page.status).toBe(200);
      seen.push(...page.body.items.map((i) => i.device.id));
      cursor = page.body.nextCursor;
    } while (cursor !== null && seen.length < 10);
    expect(seen).toEqual(lines.map((l) => l.device.id));

    const csv = await auditor.get(`/v1/access-review/principals/${world.ids.alice}?format=csv`);
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-disposition')).toMatch(/^attachment; filename="access-review-principal-.*\.csv"$/);
    const rows = (csv.body as string).trim().split('\r\n');
    expect(rows[0]).toBe('device_id,hostname,principal_id,principal_name,principal_kind,session_type,access,chain');
    expect(
      rows
        .slice(1)
        .map((row) => row.split(',').slice(1, 2).concat(row.split(',').slice(5, 7)).join(' '))
        .sort(),
    ).toEqual(['AR-SRV-1 remote-control view', 'AR-WS-A remote-control full', 'AR-WS-B remote-control full']);
  });

  it('answers the check with the same ten checks as the dry run, and says why not', async () => {
    const dryRun = async (who: string, deviceId: string) =>
      (
        await admin.as(keys[who] ?? world.keys[who as 'alice' | 'bob']).post('/v1/eligibility/check', {
          deviceId,
          type: 'remote-control',
          access: 'full',
          reason: 'audit',
        })
      ).body;
    const check = async (principalId: string, deviceId: string) =>
      (
        await auditor.get(
          `/v1/access-review/check?deviceId=${deviceId}&principalId=${principalId}&type=remote-control&access=full&reason=audit`,
        )
      ).body;
    // The heartbeat's age in seconds may tick between the two calls; everything else must be identical.
    const comparable = (checks: { id: string; passed: boolean; detail: string }[]) =>
      checks.map((c) => ({ id: c.id, passed: c.passed, detail: c.id === 'device_online' ? '' : c.detail }));

    for (const [who, principalId, reaches] of [
      ['alice', world.ids.alice, true],
      ['bob', world.ids.bob, false],
      ['dave', ids.dave, true],
    ] as const) {
      const [dry, mine] = [await dryRun(who, ids.wsA), await check(principalId, ids.wsA)];
      expect(mine.checks).toHaveLength(10);
      expect(comparable(mine.checks)).toEqual(comparable(dry.checks));
      expect(mine.eligibleNow).toBe(dry.eligible);
      expect(mine.canReach).toBe(reaches);
    }
    const bob = await check(world.ids.bob, ids.wsA);
    expect(bob.checks.find((c: { id: string }) => c.id === 'permitted_viewer')).toMatchObject({ passed: false, standing: true });
    // alice asks full control of the server where the settings allow view only.
    const srv = await check(world.ids.alice, ids.srv);
    expect(srv.canReach).toBe(false);
    expect(srv.checks.find((c: { id: string }) => c.id === 'access_level')).toMatchObject({ passed: false });
  });

  it("hides a device outside a collection-scoped auditor's scope: 404 for it, absent from a principal's review", async () => {
    expect((await deskAuditor.get(`/v1/access-review/devices/${ids.wsA}`)).status).toBe(200);
    const out = await deskAuditor.get(`/v1/access-review/devices/${ids.srv}`);
    expect(out.status).toBe(404);
    expect(out.body.error.code).toBe('not_found');
    expect(
      (await deskAuditor.get(`/v1/access-review/check?deviceId=${ids.srv}&principalId=${world.ids.alice}&type=remote-control&access=view`))
        .status,
    ).toBe(404);
    const page = await deskAuditor.get(`/v1/access-review/principals/${world.ids.alice}`);
    expect(page.status).toBe(200);
    expect(page.body.items.map((i: { device: { hostname: string } }) => i.device.hostname).sort()).toEqual(['AR-WS-A', 'AR-WS-B']);
    const nd = await deskAuditor.get(`/v1/access-review/principals/${world.ids.alice}?format=ndjson`);
    expect(nd.status).toBe(200);
    expect(String(nd.body)).toContain('AR-WS-A');
    expect(String(nd.body)).not.toContain(ids.srv);
  });

  it('refuses bad input with the error shape: malformed ids and cursor 400, unknown objects 404, a group 422, no permission 403', async () => {
    const cases: [string, number][] = [
      ['/v1/access-review/devices/not-a-uuid', 400],
      ['/v1/access-review/devices/00000000-0000-4000-8000-000000000000', 404],
      [`/v1/access-review/devices/${ids.wsA}?format=xml`, 400],
      ['/v1/access-review/principals/nope', 400],
      ['/v1/access-review/principals/00000000-0000-4000-8000-000000000000', 404],
      [`/v1/access-review/principals/${world.ids.alice}?cursor=bad!`, 400],
      [`/v1/access-review/principals/${world.ids.alice}?cursor=${Buffer.from('["x"]').toString('base64url')}`, 400],
      [`/v1/access-review/principals/${world.ids.alice}?limit=0`, 400],
      [`/v1/access-review/principals/${world.ids.helpdesk}`, 422],
      [`/v1/access-review/check?deviceId=${ids.wsA}&principalId=${world.ids.alice}&type=telnet&access=full`, 400],
      [`/v1/access-review/check?deviceId=${ids.wsA}&principalId=00000000-0000-4000-8000-000000000000&type=remote-control&access=full`, 404],
      [`/v1/access-review/check?deviceId=${ids.wsA}&principalId=${world.ids.alice}&type=remote-control`, 400],
    ];
    for (const [path, status] of cases) {
      const r = await auditor.get(path);
      expect({ path, status: r.status }).toEqual({ path, status });
      expect(r.body.error).toMatchObject({ status, code: expect.any(String), message: expect.any(String) });
    }
    // An operator holds no audit.read.
    expect((await admin.as(world.keys.bob).get(`/v1/access-review/devices/${ids.wsA}`)).status).toBe(403);
  });
});
