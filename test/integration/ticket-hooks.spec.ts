import { createHmac, randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { loadConfig } from '../../libs/config/src';
import { createDataSource, enablePreparedStatements } from '../../libs/database/src';
import { verifyAudit } from '../../libs/audit/src';
import type { OutboxRelay } from '../../libs/jobs/src';
import { SessionIntake, SessionTransitions } from '../../libs/sessions/src';
import { SecretBox, defaultRules, type MappingRule } from '../../libs/tickets/src';
import { TicketWritebackHandler } from '../../libs/workflow/src';
import { FakeVendor, DEFAULT_CREDENTIALS } from '../../apps/fake-vendor/src/fake-vendor';
import { redriveWriteback } from '../../apps/api/src/tickets/ticket-writebacks.service';
import { fixture } from '../../libs/tickets/src/testing/fixtures';
import { TicketHooks } from '../../apps/api/src/tickets/ticket-hooks.service';
import { TEST_AUDIT_KEY, freshDatabase } from '../support/env';

/**
 * The webhook intake of ticket triggers on a real PostgreSQL: a signed Jira delivery becomes a
 * session through the one intake; redeliveries (50 at once) make one session and one log line
 * each, and one note at a fake Jira however often its write-back runs; every refusal leaves its
 * log line and nothing else. Write-back against the fake: Retry-After honoured, attempts capped
 * and dead-lettered, re-driven once, 4xx dead at once.
 */
describe('TicketHooks on PostgreSQL', () => {
  let ds: DataSource;
  let hooks: TicketHooks;
  let transitions: SessionTransitions;
  let writeback: TicketWritebackHandler;
  const jira = new FakeVendor('jira');
  const key = randomBytes(32);
  const box = new SecretBox(key);
  const secret = 'jira-secret-0123456789';
  const ids: Record<string, string> = {};

  const one = async <T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T> => (await ds.query(sql, params))[0];
  const count = async (table: string) => (await one<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).n;
  const sign = (raw: Buffer) => `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;
  const jiraHeaders = (raw: Buffer, delivery: string) => ({
    'content-type': 'application/json; charset=utf-8',
    'x-hub-signature': sign(raw),
    'x-atlassian-webhook-identifier': delivery,
  });

  /** The published "assigned" payload, labelled for remote help and naming the device in its summary. */
  const assigned = (summary = 'Outlook hangs on device: PC-1', accountId?: string): Buffer => {
    const body = structuredClone(fixture<Record<string, any>>('jira_issue_updated_assigned.json'));
    body.issue.fields.labels.push('remote-help');
    body.issue.fields.summary = summary;
    if (accountId) body.issue.fields.assignee.accountId = accountId;
    return Buffer.from(JSON.stringify(body));
  };
  const jiraAccountId = () => fixture<Record<string, any>>('jira_issue_updated_assigned.json').issue.fields.assignee.accountId as string;

  beforeAll(async () => {
    const config = loadConfig({
      DATABASE_URL: await freshDatabase('ticket_hooks'),
      AUDIT_HMAC_KEY: TEST_AUDIT_KEY,
      DB_POOL_SIZE: '10',
      TICKET_SECRETS_KEY: key.toString('hex'),
      TICKET_WRITEBACK_ATTEMPTS: '3',
    });
    ds = createDataSource(config.database);
    await ds.initialize();
    enablePreparedStatements(ds);
    const relay = { kick: () => undefined } as unknown as OutboxRelay;
    hooks = new TicketHooks(ds, new SessionIntake(ds, relay, config), box);
    transitions = new SessionTransitions(ds, config);
    writeback = new TicketWritebackHandler(ds, config);
    await jira.listen();

    const id = async (sql: string, params: unknown[]) => (await one<{ id: string }>(sql, params)).id;
    ids.desks = await id(`INSERT INTO collections (name) VALUES ('Desks') RETURNING id`, []);
    for (const host of ['PC-1', 'PC-2', 'TWIN-A', 'TWIN-B']) {
      ids[host] = await id(`INSERT INTO devices (hostname, os_family) VALUES ($1, 'windows') RETURNING id`, [host]);
      await ds.query('INSERT INTO collection_members (collection_id, device_id) VALUES ($1, $2)', [ids.desks, ids[host]]);
    }
    await ds.query(`UPDATE devices SET external_id = 'cmdb-twin' WHERE hostname IN ('TWIN-A')`);
    ids.bot = await id(`INSERT INTO principals (name, kind) VALUES ('jira-bot', 'service') RETURNING id`, []);
    ids.alice = await id(`INSERT INTO principals (name, kind) VALUES ('alice', 'user') RETURNING id`, []);
    await ds.query(`INSERT INTO role_assignments (principal_id, role, collection_ids) VALUES ($1, 'ticket_integration', $2)`, [
      ids.bot,
      [ids.desks],
    ]);
    await ds.query(`INSERT INTO role_assignments (principal_id, role, collection_ids) VALUES ($1, 'remote_tools_operator', $2)`, [
      ids.alice,
      [ids.desks],
    ]);
    await ds.query(`INSERT INTO principal_identities (system, external_id, principal_id) VALUES ('jira', $1, $2)`, [
      jiraAccountId(),
      ids.alice,
    ]);

    const integration = async (name: string, rules: MappingRule[], enabled = true) => {
      const row = await one<{ id: string }>(
        `INSERT INTO ticket_integrations (name, kind, principal_id, inbound_secrets_sealed, rules, enabled) VALUES ($1, 'jira', $2, '', $3, $4) RETURNING id`,
        [name, ids.bot, JSON.stringify(rules), enabled],
      );
      await ds.query('UPDATE ticket_integrations SET inbound_secrets_sealed = $2 WHERE id = $1', [
        row.id,
        box.seal(JSON.stringify([secret]), row.id),
      ]);
      return row.id;
    };
    ids.jira = await integration('Jira', defaultRules('jira'));
    await ds.query('UPDATE ticket_integrations SET outbound_url = $2, outbound_credentials_sealed = $3 WHERE id = $1', [
      ids.jira,
      jira.url,
      box.seal(JSON.stringify(DEFAULT_CREDENTIALS.jira), ids.jira),
    ]);
    ids.off = await integration('Jira (off)', defaultRules('jira'), false);
  });
  afterAll(async () => {
    await jira.close();
    await ds?.destroy();
  });

  /** Moves a requested session to `rejected` through the transition owner, as the worker would. */
  const reject = async (sessionId: string) => {
    const session = (await transitions.snapshot(sessionId))!;
    const steps = [{ to: 'validating' as const }, { to: 'rejected' as const, reason: 'not a permitted viewer; the device is offline' }];
    expect(await transitions.apply({ session, actor: { id: null, kind: 'system' }, steps })).not.toBeNull();
  };
  /** The write-back jobs the outbox holds for a session. */
  const owedNotes = async (sessionId: string) =>
    ds.query<{ job_id: string; payload: { outcome: string; redrive: number } }[]>(
      `SELECT job_id, payload FROM outbox WHERE queue = 'ticket-writebacks' AND payload->>'sessionId' = $1 ORDER BY id`,
      [sessionId],
    );
  const noteRow = (sessionId: string) =>
    one<{ id: string; state: string; attempts: number; last_error: string | null }>(
      `SELECT id, state, attempts, last_error FROM ticket_writebacks WHERE session_id = $1`,
      [sessionId],
    );
  /** A signed delivery naming `host`, its session rejected: a note is owed. */
  const rejectedTicket = async (host: string, delivery: string) => {
    const raw = assigned(`device: ${host}`);
    const answer = await hooks.receive(ids.jira, raw, jiraHeaders(raw, delivery));
    const sessionId = answer.body.sessionId!;
    await reject(sessionId);
    return sessionId;
  };

  it('turns a signed delivery into a session through the intake, with the ticket on it and in its audit', async () => {
    const raw = assigned();
    const answer = await hooks.receive(ids.jira, raw, jiraHeaders(raw, 'd-1'));
    expect(answer).toEqual({
      status: 202,
      body: { deliveryId: expect.any(String), outcome: 'session_requested', sessionId: expect.any(String), reason: null },
    });
    const session = await one(
      'SELECT device_id, viewer_id, requester_id, ticket_ref, ticket_integration_id, ticket_api_id, type, access, reason, state FROM sessions WHERE id = $1',
      [answer.body.sessionId],
    );
    expect(session).toEqual({
      device_id: ids['PC-1'],
      viewer_id: ids.alice,
      requester_id: ids.bot,
      ticket_ref: 'TES-41',
      // Where its outcomes are written back travels with the session from intake (no race with the log line).
      ticket_integration_id: ids.jira,
      ticket_api_id: 'TES-41',
      type: 'remote-assistance',
      access: 'full',
      reason: 'Jira TES-41: Outlook hangs on device: PC-1',
      state: 'requested',
    });
    expect(
      await one(
        'SELECT outcome, rule, ticket_ref, device_id, viewer_id, session_id, first, signature FROM ticket_deliveries WHERE id = $1',
        [answer.body.deliveryId],
      ),
    ).toEqual({
      outcome: 'session_requested',
      rule: 'Jira: assigned with label remote-help',
      ticket_ref: 'TES-41',
      device_id: ids['PC-1'],
      viewer_id: ids.alice,
      session_id: answer.body.sessionId,
      first: true,
      signature: 'ok',
    });
    expect((await verifyAudit(ds, TEST_AUDIT_KEY)).problems).toEqual([]);
  });

  it('makes one session of 50 concurrent redeliveries, and answers each as the first', async () => {
    const raw = assigned('device: PC-2 is slow');
    const sessionsBefore = await count('sessions');
    const answers = await Promise.all(Array.from({ length: 50 }, () => hooks.receive(ids.jira, raw, jiraHeaders(raw, 'd-50'))));
    expect(await count('sessions')).toBe(sessionsBefore + 1);
    const lines = await ds.query<{ first: boolean; outcome: string }[]>(
      `SELECT first, outcome FROM ticket_deliveries WHERE delivery_key = 'd-50'`,
    );
    expect(lines).toHaveLength(50);
    expect(lines.filter((l) => l.first)).toEqual([{ first: true, outcome: 'session_requested' }]);
    expect(new Set(answers.map((a) => a.body.deliveryId)).size).toBe(1);
    // Every answer is the first's: its line, its outcome and its session.
    const [firstLine] = await ds.query<{ id: string; session_id: string }[]>(
      `SELECT id::text, session_id FROM ticket_deliveries WHERE delivery_key = 'd-50' AND first`,
    );
    expect(answers.map((a) => [a.status, a.body.deliveryId, a.body.outcome, a.body.sessionId, a.body.reason])).toEqual(
      Array(50).fill([202, firstLine?.id, 'session_requested', firstLine?.session_id, null]),
    );
    // A redelivery that arrived while the first was still being processed says so; later ones carry its session.
    const late = await hooks.receive(ids.jira, raw, jiraHeaders(raw, 'd-50'));
    expect(late.body).toMatchObject({
      outcome: 'session_requested',
      duplicateOf: answers[0]?.body.deliveryId,
      sessionId: expect.any(String),
    });

    // Its outcome owes the ticket one note, however often the write-back runs, even all at once.
    const sessionId = late.body.sessionId!;
    await reject(sessionId);
    expect((await owedNotes(sessionId)).map((j) => j.job_id)).toEqual([`writeback.${sessionId}.rejected`]);
    const before = jira.notes.length;
    // Five at once: one claims the note and writes it; the others find it sent, or claimed and wait for the lease.
    const runs = await Promise.all(Array.from({ length: 5 }, () => writeback.handle(sessionId, 'rejected')));
    expect(runs.filter((r) => r === null).length).toBeGreaterThanOrEqual(1);
    expect(runs.every((r) => r === null || r.retryInMs > 0)).toBe(true);
    expect(await writeback.handle(sessionId, 'rejected')).toBeNull();
    const notes = jira.notes.slice(before);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatchObject({ ticket: 'TES-41', private: true, path: '/rest/api/3/issue/TES-41/comment' });
    expect(notes[0].text).toContain('rcflow: the remote-assistance session to PC-2 for alice was refused by rcflow.');
    expect(notes[0].text).toContain('- not a permitted viewer\n- the device is offline');
    expect(await noteRow(sessionId)).toMatchObject({ state: 'sent', attempts: 1, last_error: null });
  });

  it('waits as long as a throttling ticket system asks (Retry-After), then writes the note', async () => {
    const sessionId = await rejectedTicket('PC-1', 'throttled');
    jira.setMode({ mode: 'throttle', count: 1, retryAfter: '7' });
    const before = jira.notes.length;
    expect(await writeback.handle(sessionId, 'rejected')).toEqual({ retryInMs: 7000 });
    expect(await noteRow(sessionId)).toMatchObject({ state: 'pending', attempts: 1, last_error: expect.stringContaining('answered 429') });
    expect(await writeback.handle(sessionId, 'rejected')).toBeNull();
    expect(await noteRow(sessionId)).toMatchObject({ state: 'sent', attempts: 2 });
    expect(jira.notes.length - before).toBe(1);
  });

  it('dead-letters a note when the ticket system stays down for every attempt; a re-drive writes it once', async () => {
    const sessionId = await rejectedTicket('PC-1', 'down');
    jira.setMode({ mode: 'unreachable' });
    const before = jira.notes.length;
    try {
      // TICKET_WRITEBACK_ATTEMPTS=3: two backoffs, then dead.
      expect(await writeback.handle(sessionId, 'rejected')).toEqual({ retryInMs: expect.any(Number) });
      expect(await writeback.handle(sessionId, 'rejected')).toEqual({ retryInMs: expect.any(Number) });
      expect(await writeback.handle(sessionId, 'rejected')).toBeNull();
    } finally {
      jira.setMode({ mode: 'ok' });
    }
    const dead = await noteRow(sessionId);
    expect(dead).toMatchObject({
      state: 'dead',
      attempts: 3,
      last_error: expect.stringMatching(/^gave up after 3 attempts: could not reach/),
    });
    // Dead stays dead: a late job does nothing.
    expect(await writeback.handle(sessionId, 'rejected')).toBeNull();
    expect(jira.notes.length).toBe(before);

    const redriven = await ds.transaction((manager) =>
      redriveWriteback({ manager, auditKey: TEST_AUDIT_KEY, actorId: ids.alice }, ids.jira, dead.id),
    );
    expect(redriven).toMatchObject({ state: 'pending', attempts: 0, redrives: 1, lastError: null });
    expect((await owedNotes(sessionId)).map((j) => j.payload.redrive)).toEqual([0, 1]);
    expect(await writeback.handle(sessionId, 'rejected')).toBeNull();
    expect(jira.notes.length - before).toBe(1);
    expect(await noteRow(sessionId)).toMatchObject({ state: 'sent', attempts: 1 });
    // A sent note is not re-driven.
    await expect(
      ds.transaction((manager) => redriveWriteback({ manager, auditKey: TEST_AUDIT_KEY, actorId: ids.alice }, ids.jira, dead.id)),
    ).rejects.toMatchObject({ status: 409 });
    expect((await verifyAudit(ds, TEST_AUDIT_KEY)).problems).toEqual([]);
  });

  it('dead-letters at once when the ticket system refuses the credentials (retrying will not help)', async () => {
    const sessionId = await rejectedTicket('PC-1', 'bad-credentials');
    const [{ sealed }] = await ds.query(`SELECT outbound_credentials_sealed AS sealed FROM ticket_integrations WHERE id = $1`, [ids.jira]);
    await ds.query('UPDATE ticket_integrations SET outbound_credentials_sealed = $2 WHERE id = $1', [
      ids.jira,
      box.seal(JSON.stringify({ ...DEFAULT_CREDENTIALS.jira, apiToken: 'wrong' }), ids.jira),
    ]);
    try {
      expect(await writeback.handle(sessionId, 'rejected')).toBeNull();
    } finally {
      await ds.query('UPDATE ticket_integrations SET outbound_credentials_sealed = $2 WHERE id = $1', [ids.jira, sealed]);
    }
    expect(await noteRow(sessionId)).toMatchObject({ state: 'dead', attempts: 1, last_error: expect.stringContaining('answered 401') });
  });

  it('owes nothing for a ticket reference that came through the REST API (no integration asked)', async () => {
    const raw = assigned('device: PC-1');
    const answer = await hooks.receive(ids.jira, raw, jiraHeaders(raw, 'rest-like'));
    const sessionId = answer.body.sessionId!;
    await ds.query('UPDATE sessions SET ticket_integration_id = NULL WHERE id = $1', [sessionId]);
    await reject(sessionId);
    expect(await owedNotes(sessionId)).toHaveLength(1);
    expect(await writeback.handle(sessionId, 'rejected')).toBeNull();
    expect(await ds.query('SELECT 1 FROM ticket_writebacks WHERE session_id = $1', [sessionId])).toEqual([]);
  });

  it.each([
    [
      'a wrong signature',
      (raw: Buffer) => ({ ...jiraHeaders(raw, 'x'), 'x-hub-signature': sign(Buffer.from('other')) }),
      401,
      'signature_refused',
    ],
    ['no signature', () => ({ 'content-type': 'application/json', 'x-atlassian-webhook-identifier': 'x' }), 401, 'signature_refused'],
    ['another content type', (raw: Buffer) => ({ ...jiraHeaders(raw, 'x'), 'content-type': 'text/plain' }), 415, 'malformed'],
  ])('refuses %s with its status, one log line, no session', async (_, headersOf, status, outcome) => {
    const raw = assigned();
    const [sessions, lines] = [await count('sessions'), await count('ticket_deliveries')];
    const answer = await hooks.receive(ids.jira, raw, headersOf(raw));
    expect(answer).toMatchObject({ status, body: { outcome } });
    expect([await count('sessions'), await count('ticket_deliveries')]).toEqual([sessions, lines + 1]);
  });

  it('refuses malformed JSON with 400 and records it', async () => {
    const raw = Buffer.from('{"webhookEvent": ');
    const answer = await hooks.receive(ids.jira, raw, jiraHeaders(raw, 'bad-json'));
    expect(answer).toMatchObject({ status: 400, body: { outcome: 'malformed', reason: 'the body is not valid JSON' } });
  });

  it.each([
    [
      'no rule triggers',
      () => Buffer.from(JSON.stringify(fixture('jira_issue_updated_assigned.json'))),
      'unmatched',
      /condition is not met/,
    ],
    ['no device has the name', () => assigned('device: NOPE-9'), 'device_not_found', /no device matches NOPE-9/],
    ['the assignee is nobody here', () => assigned('device: PC-1', 'unknown-account'), 'viewer_unknown', /jira identity unknown-account/],
  ])('records, with its reason, a delivery where %s (202, no session)', async (_, body, outcome, reason) => {
    const raw = body();
    const sessions = await count('sessions');
    const answer = await hooks.receive(ids.jira, raw, jiraHeaders(raw, `why-${outcome}`));
    expect(answer).toMatchObject({ status: 202, body: { outcome, sessionId: null, reason: expect.stringMatching(reason) } });
    expect(await one('SELECT outcome, reason FROM ticket_deliveries WHERE id = $1', [answer.body.deliveryId])).toEqual({
      outcome,
      reason: answer.body.reason,
    });
    expect(await count('sessions')).toBe(sessions);
  });

  it('refuses several matching devices when the rule says so, naming them', async () => {
    const raw = assigned('device: TWIN-A');
    await ds.query(`UPDATE ticket_integrations SET rules = $2 WHERE id = $1`, [
      ids.jira,
      JSON.stringify(defaultRules('jira').map((r) => ({ ...r, device: { from: "['TWIN-B', 'cmdb-twin']", matchBy: 'either' } }))),
    ]);
    try {
      const answer = await hooks.receive(ids.jira, raw, jiraHeaders(raw, 'twins'));
      expect(answer.body).toMatchObject({ outcome: 'several_devices', reason: 'several devices match: TWIN-A, TWIN-B' });
    } finally {
      await ds.query(`UPDATE ticket_integrations SET rules = $2 WHERE id = $1`, [ids.jira, JSON.stringify(defaultRules('jira'))]);
    }
  });

  it('refuses, with its line, a delivery whose integration principal is disabled', async () => {
    const raw = assigned('device: PC-1');
    await ds.query('UPDATE principals SET disabled = true WHERE id = $1', [ids.bot]);
    try {
      const sessions = await count('sessions');
      const answer = await hooks.receive(ids.jira, raw, jiraHeaders(raw, 'bot-disabled'));
      expect(answer).toMatchObject({
        status: 202,
        body: { outcome: 'refused', sessionId: null, reason: 'the integration’s principal is disabled or gone' },
      });
      expect(await count('sessions')).toBe(sessions);
    } finally {
      await ds.query('UPDATE principals SET disabled = false WHERE id = $1', [ids.bot]);
    }
    const again = await hooks.receive(ids.jira, raw, jiraHeaders(raw, 'bot-enabled'));
    expect(again.body).toMatchObject({ outcome: 'session_requested', sessionId: expect.any(String) });
  });

  it('takes a disabled integration, a new or dropped secret and changed rules at the next delivery (nothing cached outlives them)', async () => {
    const deliver = (delivery: string, sign: (raw: Buffer) => string = (raw) => jiraHeaders(raw, delivery)['x-hub-signature']) => {
      const raw = assigned('device: PC-1');
      return hooks.receive(ids.jira, raw, { ...jiraHeaders(raw, delivery), 'x-hub-signature': sign(raw) });
    };
    const signWith = (key: string) => (raw: Buffer) => `sha256=${createHmac('sha256', key).update(raw).digest('hex')}`;
    const setSecrets = (secrets: string[]) =>
      ds.query('UPDATE ticket_integrations SET inbound_secrets_sealed = $2 WHERE id = $1', [
        ids.jira,
        box.seal(JSON.stringify(secrets), ids.jira),
      ]);
    expect((await deliver('cache-1')).body.outcome).toBe('session_requested');
    try {
      const lines = await count('ticket_deliveries');
      await ds.query('UPDATE ticket_integrations SET enabled = false WHERE id = $1', [ids.jira]);
      await expect(deliver('cache-2')).rejects.toMatchObject({ status: 404 });
      await expect(deliver('cache-2', signWith('wrong'))).rejects.toMatchObject({ status: 404 });
      expect(await count('ticket_deliveries')).toBe(lines);
      await ds.query('UPDATE ticket_integrations SET enabled = true WHERE id = $1', [ids.jira]);

      // A rotation: the new secret is accepted at once, and the old one refused once it is dropped.
      await setSecrets([secret, 'jira-secret-next']);
      expect((await deliver('cache-3', signWith('jira-secret-next'))).body.outcome).toBe('session_requested');
      await setSecrets(['jira-secret-next']);
      expect(await deliver('cache-4')).toMatchObject({ status: 401, body: { outcome: 'signature_refused' } });
      expect((await deliver('cache-5', signWith('jira-secret-next'))).body.outcome).toBe('session_requested');
      await setSecrets([secret]);

      await ds.query(`UPDATE ticket_integrations SET rules = $2 WHERE id = $1`, [
        ids.jira,
        JSON.stringify(defaultRules('jira').map((r) => ({ ...r, when: 'false' }))),
      ]);
      expect((await deliver('cache-6')).body).toMatchObject({
        outcome: 'unmatched',
        reason: expect.stringMatching(/condition is not met/),
      });
    } finally {
      await setSecrets([secret]);
      await ds.query(`UPDATE ticket_integrations SET enabled = true, rules = $2 WHERE id = $1`, [
        ids.jira,
        JSON.stringify(defaultRules('jira')),
      ]);
    }
    expect((await deliver('cache-7')).body.outcome).toBe('session_requested');
  });

  it('answers 404 for a disabled or unknown integration and records nothing', async () => {
    const raw = assigned();
    const lines = await count('ticket_deliveries');
    await expect(hooks.receive(ids.off, raw, jiraHeaders(raw, 'off'))).rejects.toMatchObject({ status: 404 });
    await expect(hooks.receive('00000000-0000-4000-8000-000000000000', raw, jiraHeaders(raw, 'off'))).rejects.toMatchObject({
      status: 404,
    });
    expect(await count('ticket_deliveries')).toBe(lines);
  });
});
