import { createHmac } from 'node:crypto';
import { fixture } from '../../libs/tickets/src/testing/fixtures';
import { OperatorWorld, Stack, addDevice, seedOperatorWorld, sessionReaches, startStack } from '../support/stack';
import { tearDown } from '../support/teardown';

jest.setTimeout(180_000);

type Json = Record<string, any>;

/**
 * Ticket triggers as a helpdesk uses them, on real processes: an integration made through the
 * API, a fixture payload signed as the vendor signs it and POSTed with its real headers, the
 * session it asks for going active with the (loopback) agent, the delivery log explaining what
 * happened — also when nothing happened.
 */
describe('ticket triggers end to end (api, worker, loopback agents)', () => {
  let stack: Stack;
  let starting: Promise<Stack> | undefined;
  let world: OperatorWorld;
  let device: string;
  const base = () => stack.apis[0].api.base;

  const post = async (path: string, raw: Buffer, headers: Record<string, string>) => {
    const res = await fetch(`${base()}${path}`, { method: 'POST', headers, body: raw });
    return { status: res.status, body: (await res.json()) as Json, headers: res.headers };
  };

  /** Waits for the session to settle and shows the failed eligibility checks if it did not go active. */
  const goesActive = async (sessionId: string) => {
    const state = await sessionReaches(stack.admin, sessionId, ['active', 'rejected', 'denied', 'failed', 'cancelled']);
    const decision = (await stack.admin.get(`/v1/sessions/${sessionId}/decision`)).body as { checks?: { passed: boolean }[] } | null;
    expect({ state, failed: (decision?.checks ?? []).filter((c) => !c.passed) }).toEqual({ state: 'active', failed: [] });
  };

  beforeAll(async () => {
    stack = await (starting = startStack('tickets', { AGENT_TRANSPORT: 'loopback', RATE_LIMIT_PER_MINUTE: '100000' }));
    // Ticket rules default to remote assistance: allowed here, with a user at the screen to accept (the loopback agent does).
    world = await seedOperatorWorld(stack.admin, { remoteAssistanceLevel: 'full', manageUnsolicitedRA: true });
    device = await addDevice(stack.admin, world.ids.desks, 'TK-PC-1');
  });
  afterAll(() => tearDown({ stack: async () => (stack ?? (await starting?.catch(() => undefined)))?.stop() }));

  it('Jira: a signed issue_updated starts a session for the assignee, active through the agent; a redelivery changes nothing', async () => {
    const jiraUser = fixture<Json>('jira_issue_updated_assigned.json').issue.fields.assignee.accountId as string;
    expect((await stack.admin.post(`/v1/principals/${world.ids.alice}/identities`, { system: 'jira', externalId: jiraUser })).status).toBe(
      201,
    );
    const created = await stack.admin.post('/v1/ticket-integrations', { name: 'Jira', kind: 'jira', principalId: world.ids.bot });
    expect(created.status).toBe(201);
    expect(created.headers.get('cache-control')).toContain('no-store');
    const { id, inboundSecret, webhookPath } = created.body as { id: string; inboundSecret: string; webhookPath: string };
    expect((await stack.admin.get(`/v1/ticket-integrations/${id}`)).body).not.toHaveProperty('inboundSecret');

    const body = fixture<Json>('jira_issue_updated_assigned.json');
    body.issue.fields.labels.push('remote-help');
    body.issue.fields.summary = 'Excel freezes on device: TK-PC-1';
    const raw = Buffer.from(JSON.stringify(body));
    const headers = {
      'content-type': 'application/json',
      'x-atlassian-webhook-identifier': 'jira-delivery-1',
      'x-hub-signature': `sha256=${createHmac('sha256', inboundSecret).update(raw).digest('hex')}`,
    };
    const first = await post(webhookPath, raw, headers);
    expect(first).toMatchObject({ status: 202, body: { outcome: 'session_requested', sessionId: expect.any(String) } });
    const sessionId = first.body.sessionId as string;
    await goesActive(sessionId);
    const session = (await stack.admin.get(`/v1/sessions/${sessionId}`)).body as Json;
    expect(session).toMatchObject({ deviceId: device, viewerId: world.ids.alice, requesterId: world.ids.bot, ticketRef: 'TES-41' });

    const again = await post(webhookPath, raw, headers);
    expect(again).toMatchObject({ status: 202, body: { sessionId, duplicateOf: first.body.deliveryId } });
    const log = (await stack.admin.get(`/v1/ticket-integrations/${id}/deliveries`)).body as { items: Json[] };
    expect(log.items.map((d) => [d.outcome, d.first, d.sessionId])).toEqual([
      ['duplicate', false, sessionId],
      ['session_requested', true, sessionId],
    ]);
    const events = (await stack.admin.get(`/v1/audit?sessionId=${sessionId}`)).body as { items: Json[] };
    expect(events.items.length).toBeGreaterThan(2);
    expect(events.items.every((e) => e.ticketRef === 'TES-41')).toBe(true);
  });

  it('ServiceNow with rcflow’s headers: the CMDB sys_id matched to the device’s external id', async () => {
    const [record] = fixture<{ result: Json[] }>('servicenow_table_api_incident_list_pdi.json').result;
    await stack.admin.post(`/v1/principals/${world.ids.alice}/identities`, { system: 'servicenow', externalId: record.assigned_to.value });
    const snDevice = await addDevice(stack.admin, world.ids.desks, 'TK-SN-1');
    const put = await stack.admin.req('PUT', `/v1/devices/${snDevice}/external-id`, { externalId: record.cmdb_ci.value });
    expect(put.status).toBe(200);
    const created = await stack.admin.post('/v1/ticket-integrations', {
      name: 'ServiceNow',
      kind: 'servicenow',
      principalId: world.ids.bot,
    });
    const { webhookPath, inboundSecret } = created.body as { webhookPath: string; inboundSecret: string };
    const raw = Buffer.from(JSON.stringify(record));
    const ts = String(Math.floor(Date.now() / 1000));
    // What the README's Business Rule script sends: GlideDigest's base64 HMAC of "<ts>.<body>".
    const signature = `sha256=${createHmac('sha256', inboundSecret).update(`${ts}.`).update(raw).digest('base64')}`;
    const res = await post(webhookPath, raw, {
      'content-type': 'application/json',
      'x-rcflow-timestamp': ts,
      'x-rcflow-signature': signature,
    });
    expect(res).toMatchObject({ status: 202, body: { outcome: 'session_requested' } });
    await goesActive(res.body.sessionId as string);
    expect((await stack.admin.get(`/v1/sessions/${res.body.sessionId}`)).body).toMatchObject({
      deviceId: snDevice,
      ticketRef: 'INC0000060',
    });
  });

  it('answers bad deliveries with 4xx and a log line, and explains an unmatched ticket', async () => {
    const created = await stack.admin.post('/v1/ticket-integrations', { name: 'GitHub', kind: 'github', principalId: world.ids.bot });
    const { id, webhookPath, inboundSecret } = created.body as { id: string; webhookPath: string; inboundSecret: string };
    const raw = Buffer.from(JSON.stringify(fixture('github_issues_opened.json')));
    const sign = (b: Buffer) => `sha256=${createHmac('sha256', inboundSecret).update(b).digest('hex')}`;
    const gh = { 'x-github-event': 'issues', 'x-github-delivery': 'gh-1' };

    expect(
      (await post(webhookPath, raw, { 'content-type': 'application/json', ...gh, 'x-hub-signature-256': sign(Buffer.from('x')) })).status,
    ).toBe(401);
    expect((await post(webhookPath, raw, { 'content-type': 'text/plain', ...gh, 'x-hub-signature-256': sign(raw) })).status).toBe(415);
    const bad = Buffer.from('{"action":');
    expect((await post(webhookPath, bad, { 'content-type': 'application/json', ...gh, 'x-hub-signature-256': sign(bad) })).status).toBe(
      400,
    );
    expect((await post('/v1/hooks/00000000-0000-4000-8000-000000000000', raw, { 'content-type': 'application/json' })).status).toBe(404);
    const big = Buffer.alloc(64 * 1024, 0x20);
    expect((await post(webhookPath, big, { 'content-type': 'application/json', ...gh, 'x-hub-signature-256': sign(big) })).status).toBe(
      413,
    );

    const unmatched = await post(webhookPath, raw, { 'content-type': 'application/json', ...gh, 'x-hub-signature-256': sign(raw) });
    expect(unmatched).toMatchObject({
      status: 202,
      body: { outcome: 'unmatched', reason: expect.stringContaining('condition is not met') },
    });
    const log = (await stack.admin.get(`/v1/ticket-integrations/${id}/deliveries`)).body as { items: Json[] };
    expect(log.items.map((d) => [d.outcome, d.statusCode])).toEqual([
      ['unmatched', 202],
      ['malformed', 400],
      ['malformed', 415],
      ['signature_refused', 401],
    ]);

    // The dry run says the same, and what a matching payload would do.
    const dry = await stack.admin.post(`/v1/ticket-integrations/${id}/dry-run`, { body: JSON.parse(raw.toString()), headers: gh });
    expect(dry.body).toMatchObject({ outcome: 'unmatched', session: null });
  });
});
