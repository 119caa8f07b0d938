import { fixture } from '../../libs/tickets/src/testing/fixtures';
import { signedHeaders } from '../../libs/tickets/src/testing/sign';
import type { TicketKind } from '../../libs/tickets/src';
import { DEFAULT_CREDENTIALS, FakeVendor, type FakeNote } from '../../apps/fake-vendor/src/fake-vendor';
import { OperatorWorld, Stack, addDevice, seedOperatorWorld, sessionReaches, startStack } from '../support/stack';
import { tearDown } from '../support/teardown';

jest.setTimeout(180_000);

type Json = Record<string, any>;

/**
 * The ticket hears how it went, on real processes: for Jira, ServiceNow, Zendesk and GitHub a
 * fixture payload signed and POSTed with its real headers, the session going active with the
 * (loopback) agent, and the note arriving at a fake of the vendor's REST API that checks method,
 * path, auth and body as the vendor documents them. Then a vendor throttling (429, Retry-After),
 * and one down until the attempts run out: dead letter, re-drive after it is back, one note.
 */
describe('ticket write-back end to end (api, worker, loopback agents, fake ticket systems)', () => {
  let stack: Stack;
  let starting: Promise<Stack> | undefined;
  let world: OperatorWorld;
  const vendors: FakeVendor[] = [];
  const base = () => stack.apis[0].api.base;

  beforeAll(async () => {
    stack = await (starting = startStack('writeback', {
      AGENT_TRANSPORT: 'loopback',
      RATE_LIMIT_PER_MINUTE: '100000',
      TICKET_WRITEBACK_ATTEMPTS: '3',
      TICKET_WRITEBACK_BACKOFF_MS: '200',
    }));
    world = await seedOperatorWorld(stack.admin, { remoteAssistanceLevel: 'full', manageUnsolicitedRA: true });
  });
  afterAll(() =>
    tearDown({
      vendors: () => Promise.all(vendors.map((v) => v.close())),
      stack: async () => (stack ?? (await starting?.catch(() => undefined)))?.stop(),
    }),
  );

  /** A fake of the vendor, an integration writing back to it, and alice known there as `assignee`. */
  const integrate = async (kind: TicketKind, name: string, assignee: string) => {
    const vendor = new FakeVendor(kind);
    vendors.push(vendor);
    await vendor.listen();
    const identity = await stack.admin.post(`/v1/principals/${world.ids.alice}/identities`, { system: kind, externalId: assignee });
    expect([201, 409]).toContain(identity.status);
    const created = await stack.admin.post('/v1/ticket-integrations', {
      name,
      kind,
      principalId: world.ids.bot,
      outbound: { url: vendor.url, credentials: DEFAULT_CREDENTIALS[kind] },
    });
    expect(created.status).toBe(201);
    expect(JSON.stringify(created.body)).not.toContain(Object.values(DEFAULT_CREDENTIALS[kind])[0]);
    const { id, inboundSecret, webhookPath } = created.body as { id: string; inboundSecret: string; webhookPath: string };
    const deliver = async (body: unknown, delivery: string) => {
      const raw = Buffer.from(JSON.stringify(body));
      const res = await fetch(`${base()}${webhookPath}`, {
        method: 'POST',
        headers: signedHeaders(kind, inboundSecret, raw, delivery),
        body: raw,
      });
      const answer = (await res.json()) as Json;
      expect({ status: res.status, outcome: answer.outcome, reason: answer.reason }).toEqual({
        status: 202,
        outcome: 'session_requested',
        reason: null,
      });
      return answer.sessionId as string;
    };
    return { id, vendor, deliver };
  };

  const goesActive = async (sessionId: string) => {
    expect(await sessionReaches(stack.admin, sessionId, ['active', 'rejected', 'denied', 'failed', 'cancelled'])).toBe('active');
  };
  const notesOf = (vendor: FakeVendor, ticket: string) => vendor.notes.filter((n) => n.ticket === ticket);
  const waitForNote = async (vendor: FakeVendor, ticket: string, says: string, timeoutMs = 20_000): Promise<FakeNote> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const note = notesOf(vendor, ticket).find((n) => n.text.includes(says));
      if (note) return note;
      if (Date.now() > deadline)
        throw new Error(`no note saying "${says}" at the fake ${vendor.kind} for ${ticket}; refused: ${JSON.stringify(vendor.refusals)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const writebacks = async (integrationId: string, query = '') =>
    ((await stack.admin.get(`/v1/ticket-integrations/${integrationId}/writebacks${query}`)).body as { items: Json[] }).items;
  /** A session's notes once none is pending any more (the vendor may take a note a moment before rcflow records it sent). */
  const settledNotes = async (integrationId: string, sessionId: string, count: number) => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const items = await writebacks(integrationId, `?sessionId=${sessionId}`);
      if ((items.length >= count && items.every((w) => w.state !== 'pending')) || Date.now() > deadline) return items;
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  it('Jira: an internal ADF comment when the session is active, another with its duration when it ends', async () => {
    const jira = fixture<Json>('jira_issue_updated_assigned.json');
    const { id, vendor, deliver } = await integrate('jira', 'Jira', jira.issue.fields.assignee.accountId);
    await addDevice(stack.admin, world.ids.desks, 'WB-JIRA-1');
    jira.issue.fields.labels.push('remote-help');
    jira.issue.fields.summary = 'Excel freezes on device: WB-JIRA-1';
    const sessionId = await deliver(jira, 'wb-jira-1');
    await goesActive(sessionId);
    const active = await waitForNote(vendor, 'TES-41', 'is active');
    expect(active).toMatchObject({ method: 'POST', path: '/rest/api/3/issue/TES-41/comment', private: true });
    expect(active.text).toContain(`rcflow: the remote-assistance session to WB-JIRA-1 for alice is active.\nSession ${sessionId}`);

    expect((await stack.admin.post(`/v1/sessions/${sessionId}/cancel`, {})).status).toBe(200);
    expect(await sessionReaches(stack.admin, sessionId, ['ended'])).toBe('ended');
    expect((await waitForNote(vendor, 'TES-41', 'has ended')).text).toMatch(/Duration: \d+ s\./);
    expect((await settledNotes(id, sessionId, 2)).map((w) => [w.outcome, w.state, w.attempts])).toEqual([
      ['active', 'sent', 1],
      ['ended', 'sent', 1],
    ]);
    expect(vendor.refusals).toEqual([]);
  });

  it('ServiceNow: a work note on the incident by its sys_id (the rule reads it beside the number)', async () => {
    const [record] = fixture<{ result: Json[] }>('servicenow_table_api_incident_list_pdi.json').result;
    const { vendor, deliver } = await integrate('servicenow', 'ServiceNow', record.assigned_to.value);
    const device = await addDevice(stack.admin, world.ids.desks, 'WB-SN-1');
    expect((await stack.admin.req('PUT', `/v1/devices/${device}/external-id`, { externalId: record.cmdb_ci.value })).status).toBe(200);
    const sessionId = await deliver(record, 'unused: ServiceNow deliveries are keyed by their body');
    await goesActive(sessionId);
    const note = await waitForNote(vendor, record.sys_id, 'is active');
    expect(note).toMatchObject({ method: 'PATCH', path: `/api/now/table/incident/${record.sys_id}` });
    expect(note.text).toContain('session to WB-SN-1 for alice is active');
  });

  it('Zendesk: a private comment on the ticket', async () => {
    const body = fixture<Json>('zendesk_event_ticket_created.thirdparty_prismatic.body.json');
    const { vendor, deliver } = await integrate('zendesk', 'Zendesk', '9001');
    await addDevice(stack.admin, world.ids.desks, 'WB-ZD-1');
    Object.assign(body.detail, { tags: ['remote_help', 'device_WB-ZD-1'], assignee_id: '9001', subject: 'Printer' });
    const sessionId = await deliver(body, 'unused');
    await goesActive(sessionId);
    const note = await waitForNote(vendor, '35436', 'is active');
    expect(note).toMatchObject({ method: 'PUT', private: true });
    expect(note.path).toMatch(/^\/api\/v2\/tickets\/35436(\.json)?$/);
  });

  it('GitHub: an issue comment, after a 429 that asked to wait a second', async () => {
    const body = fixture<Json>('github_issues_opened.json');
    const { id, vendor, deliver } = await integrate('github', 'GitHub', 'Codertocat');
    await addDevice(stack.admin, world.ids.desks, 'WB-GH-1');
    body.issue.labels.push({ name: 'remote-help' });
    body.issue.assignee = { login: 'Codertocat' };
    body.issue.body = 'My laptop is slow. device: WB-GH-1';
    vendor.setMode({ mode: 'throttle', count: 1, retryAfter: '1' });
    const sessionId = await deliver(body, 'wb-gh-1');
    await goesActive(sessionId);
    const note = await waitForNote(vendor, 'Codertocat/Hello-World#1', 'is active');
    expect(note).toMatchObject({ method: 'POST', path: '/repos/Codertocat/Hello-World/issues/1/comments' });
    expect(vendor.counts.throttled).toBe(1);
    const [sent] = await settledNotes(id, sessionId, 1);
    expect(sent).toMatchObject({ outcome: 'active', state: 'sent', attempts: 2 });
    // It waited as told: the note came at least a second after the 429.
    expect(Date.parse(sent.sentAt) - Date.parse(sent.createdAt)).toBeGreaterThanOrEqual(1000);
  });

  it('a ticket system down until the attempts run out: dead letter, re-driven once it is back, one note', async () => {
    const jira = fixture<Json>('jira_issue_updated_assigned.json');
    const { id, vendor, deliver } = await integrate('jira', 'Jira (flaky)', 'flaky-assignee');
    await addDevice(stack.admin, world.ids.desks, 'WB-DOWN-1');
    jira.issue.key = 'DOWN-7';
    jira.issue.fields.assignee.accountId = 'flaky-assignee';
    jira.issue.fields.labels.push('remote-help');
    jira.issue.fields.summary = 'VPN drops on device: WB-DOWN-1';
    vendor.setMode({ mode: 'down' });
    const sessionId = await deliver(jira, 'wb-down-1');
    await goesActive(sessionId);
    const deadline = Date.now() + 20_000;
    let dead: Json[] = [];
    while (dead.length === 0 && Date.now() < deadline) {
      dead = await writebacks(id, '?state=dead');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ sessionId, outcome: 'active', attempts: 3, lastError: expect.stringContaining('answered 503') });
    expect(vendor.counts.down).toBe(3);
    expect(notesOf(vendor, 'DOWN-7')).toEqual([]);

    vendor.setMode({ mode: 'ok' });
    const retried = await stack.admin.post(`/v1/ticket-integrations/${id}/writebacks/${dead[0].id}/retry`, {});
    expect(retried).toMatchObject({ status: 202, body: { state: 'pending', attempts: 0, redrives: 1 } });
    await waitForNote(vendor, 'DOWN-7', 'is active');
    expect((await settledNotes(id, sessionId, 1))[0]).toMatchObject({ state: 'sent', attempts: 1, redrives: 1 });
    // Sent is sent: a second retry is refused, and no second note comes.
    expect((await stack.admin.post(`/v1/ticket-integrations/${id}/writebacks/${dead[0].id}/retry`, {})).status).toBe(409);
    await new Promise((r) => setTimeout(r, 500));
    expect(notesOf(vendor, 'DOWN-7')).toHaveLength(1);
    const audit = (await stack.admin.get(`/v1/audit?action=ticket_integration.writeback_redriven`)).body as { items: Json[] };
    expect(audit.items.map((e) => e.sessionId)).toContain(sessionId);
  });
});
