import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from '../../libs/tickets/src/testing/fixtures';
import { signedHeaders } from '../../libs/tickets/src/testing/sign';
import { DEFAULT_CREDENTIALS, FakeVendor } from '../../apps/fake-vendor/src/fake-vendor';
import { TEST_AUDIT_KEY, queuePrefix } from '../support/env';
import { Api } from '../support/http';
import { RcflowProcess, waitUntil } from '../support/processes';
import { PrivateRedis, freePort } from '../support/redis-server';
import { sessionReaches } from '../support/stack';
import { tearDown } from '../support/teardown';

jest.setTimeout(240_000);

type Json = Record<string, any>;

/**
 * `npm run demo` as a new user meets it: the embedded database (PGlite), API and workers in one
 * process, the simulated agents; its three sessions as printed; then the README's walk-throughs on
 * it — a Jira delivery signed as Jira signs it goes active and its note reaches a fake Jira, and a
 * session booked a few seconds ahead goes active on time.
 */
describe('the demo (embedded database, one process)', () => {
  let redis: PrivateRedis;
  let demo: RcflowProcess;
  let admin: Api;
  const jira = new FakeVendor('jira');
  const dir = mkdtempSync(join(tmpdir(), 'rcflow-demo-'));

  let env: Record<string, string>;
  let port: number;
  beforeAll(async () => {
    redis = await PrivateRedis.start();
    port = await freePort();
    env = {
      DEMO: 'true',
      PORT: String(port),
      PGLITE_DIR: join(dir, 'pglite'),
      AUDIT_CHECKPOINT_DIR: join(dir, 'checkpoints'),
      REDIS_URL: redis.url,
      QUEUE_PREFIX: queuePrefix('demo'),
      AUDIT_HMAC_KEY: TEST_AUDIT_KEY,
      LOG_LEVEL: 'warn',
    };
    demo = RcflowProcess.start('api', env);
    await demo.waitFor('Stop with Ctrl-C.', 180_000);
    admin = new Api(`http://127.0.0.1:${port}`).as(/admin +(rcf_\S+)/.exec(demo.output)![1]);
    await jira.listen();
  });
  afterAll(() =>
    tearDown({
      demo: () => demo?.stop(),
      jira: () => jira.close(),
      redis: () => redis?.stop(),
      dir: () => rmSync(dir, { recursive: true, force: true }),
    }),
  );

  /** What the demo printed after its banner: the live transitions. */
  const live = () => demo.output.slice(demo.output.indexOf('Live: every session transition'));
  const id = async (path: string) => ((await admin.get(path)).body as { items: Json[] }).items[0].id as string;

  it('prints its three sessions as they ended up', () => {
    expect(demo.output).toMatch(/active +alice \(HELPDESK\) controls WS-1/);
    expect(demo.output).toMatch(/rejected +bob \(not a permitted viewer\) asks for WS-2/);
    expect(demo.output).toMatch(/rejected +helpdesk-bot for alice: remote assistance on WS-3/);
  });

  it('takes a signed Jira delivery to an active session and a note at the fake Jira (README walk-through)', async () => {
    const bot = await id('/v1/principals?name=helpdesk-bot');
    const alice = await id('/v1/principals?name=alice');
    const defaults = (await admin.get('/v1/ticket-integrations/defaults/jira')).body as { rules: Json[] };
    const rules = defaults.rules.map((r) => ({
      ...r,
      device: { from: 'issue.fields.customfield_10050', matchBy: 'hostname' },
      session: { ...r.session, type: 'remote-control' },
    }));
    const created = await admin.post('/v1/ticket-integrations', {
      name: 'Jira',
      kind: 'jira',
      principalId: bot,
      rules,
      outbound: { url: jira.url, credentials: DEFAULT_CREDENTIALS.jira },
    });
    expect(created.status).toBe(201);
    const body = fixture<Json>('jira_issue_updated_assigned.json');
    expect(
      (await admin.post(`/v1/principals/${alice}/identities`, { system: 'jira', externalId: body.issue.fields.assignee.accountId })).status,
    ).toBe(201);
    body.issue.fields.labels.push('remote-help');
    body.issue.fields.customfield_10050 = 'WS-2';
    const raw = Buffer.from(JSON.stringify(body));
    const res = await fetch(`${admin.base}${created.body.webhookPath}`, {
      method: 'POST',
      headers: signedHeaders('jira', created.body.inboundSecret, raw, 'demo-1'),
      body: raw,
    });
    const answer = (await res.json()) as Json;
    // The delivery id is text on the embedded database too (PGlite gave the bigint as a number once).
    expect({ status: res.status, answer }).toMatchObject({
      status: 202,
      answer: { deliveryId: expect.any(String), outcome: 'session_requested', sessionId: expect.any(String) },
    });
    expect(await sessionReaches(admin, answer.sessionId, ['active', 'rejected', 'failed'], 30_000)).toBe('active');
    const [note] = await jira.waitForNotes(1, 20_000);
    expect(note.text).toContain('rcflow: the remote-control session to WS-2 for alice is active.');
  });

  it('starts a session booked a few seconds ahead on time (README booking)', async () => {
    const aliceKey = /alice +(rcf_\S+)/.exec(demo.output)![1];
    const ws3 = await id('/v1/devices?hostname=WS-3');
    const notBefore = new Date(Date.now() + 3000).toISOString();
    const r = await admin.as(aliceKey).post('/v1/sessions', { deviceId: ws3, type: 'remote-control', access: 'full', notBefore });
    expect(r).toMatchObject({ status: 202, body: { state: 'scheduled' } });
    expect(await sessionReaches(admin, r.body.id, ['active', 'rejected', 'failed', 'expired'], 30_000)).toBe('active');
    // The terminal shows it live after the banner, one line per transition, from the event stream.
    const short = String(r.body.id).slice(0, 8);
    await waitUntil(
      async () => new RegExp(`WS-3 +active +alice +session ${short}`).test(live()),
      10_000,
      'the live line of the booking going active',
    );
    expect(live()).toMatch(new RegExp(`WS-3 +scheduled +alice +session ${short}`));
  });

  it('previews a weekly Amsterdam schedule, and refuses an occurrence once alice has left HELPDESK (README schedules)', async () => {
    const alice = admin.as(/alice +(rcf_\S+)/.exec(demo.output)![1]);
    const ws2 = await id('/v1/devices?hostname=WS-2');
    const weekly = await alice.post('/v1/schedules', {
      name: 'printer help',
      timing: { cron: '0 14 * * 4', timeZone: 'Europe/Amsterdam' },
      deviceIds: [ws2],
      type: 'remote-assistance',
      access: 'full',
      reason: 'new printer',
    });
    expect(weekly.status).toBe(201);
    const preview = await alice.get(`/v1/schedules/${weekly.body.id}/occurrences?count=5`);
    expect(preview.body.items).toHaveLength(5);
    for (const o of preview.body.items as { local: string }[]) expect(o.local).toMatch(/T14:00(:00)?\+0[12]:00$/);

    const startsAt = new Date(Math.ceil((Date.now() + 4000) / 1000) * 1000).toISOString();
    const check = await alice.post('/v1/schedules', {
      name: 'check',
      timing: { intervalMinutes: 5, startsAt },
      deviceIds: [ws2],
      type: 'remote-control',
      access: 'full',
    });
    expect(check.status).toBe(201);
    const helpdesk = await id('/v1/principals?kind=group&name=HELPDESK');
    const aliceId = await id('/v1/principals?name=alice');
    expect((await admin.req('DELETE', `/v1/principals/${helpdesk}/members/${aliceId}`)).status).toBe(200);
    const deadline = Date.now() + 30_000;
    let runs: Json[] = [];
    while (Date.now() < deadline && runs.length === 0) {
      await new Promise((r) => setTimeout(r, 300));
      runs = (await admin.get(`/v1/schedules/${check.body.id}/runs`)).body.items as Json[];
    }
    expect(runs).toEqual([expect.objectContaining({ at: startsAt, outcome: 'refused', reason: 'alice may not request sessions' })]);
  });

  it('has an auditor who reads everything and a desk auditor who does not find SRV-1 (README console walk-through)', async () => {
    const auditor = admin.as(/ auditor +(rcf_\S+)/.exec(demo.output)![1]);
    const deskAuditor = admin.as(/desk-auditor +(rcf_\S+)/.exec(demo.output)![1]);
    const srv = await id('/v1/devices?hostname=SRV-1');
    expect((await auditor.get(`/v1/devices/${srv}`)).status).toBe(200);
    expect((await deskAuditor.get(`/v1/devices/${srv}`)).status).toBe(404);
    const hosts = ((await deskAuditor.get('/v1/devices')).body.items as Json[]).map((d) => d.hostname).sort();
    expect(hosts).toEqual(['DEMO-PC', 'WS-1', 'WS-2', 'WS-3']);
    expect((await deskAuditor.get('/v1/sessions')).status).toBe(200);
    expect((await deskAuditor.post('/v1/sessions', { deviceId: srv, type: 'remote-control', access: 'full' })).status).toBe(403);
  });

  it('keeps the embedded database to this user: its directories 0700, its files 0600', () => {
    const data = join(dir, 'pglite');
    const dirs = [data, ...readdirSync(data, { recursive: true, encoding: 'utf8' }).map((f) => join(data, f))].filter((f) =>
      statSync(f).isDirectory(),
    );
    expect(new Set(dirs.map((d) => (statSync(d).mode & 0o777).toString(8)))).toEqual(new Set(['700']));
    // Present since the database was made (files PGlite adds later sit in 0700 directories).
    for (const f of ['PG_VERSION', 'postgresql.conf', 'global/pg_control'])
      expect((statSync(join(data, f)).mode & 0o777).toString(8)).toBe('600');
  });
});

/**
 * A restarted demo tells the truth again: the first run's WS-1 session would otherwise hold the
 * device and the new banner would say alice was rejected.
 */
describe('the demo restarted on the same data', () => {
  let redis: PrivateRedis;
  let demo: RcflowProcess;
  const dir = mkdtempSync(join(tmpdir(), 'rcflow-demo-restart-'));
  let env: Record<string, string>;
  let base: string;

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    env = {
      DEMO: 'true',
      PORT: String(port),
      PGLITE_DIR: join(dir, 'pglite'),
      AUDIT_CHECKPOINT_DIR: join(dir, 'checkpoints'),
      REDIS_URL: redis.url,
      QUEUE_PREFIX: queuePrefix('demo-restart'),
      AUDIT_HMAC_KEY: TEST_AUDIT_KEY,
      LOG_LEVEL: 'warn',
    };
    demo = RcflowProcess.start('api', env);
    await demo.waitFor('Stop with Ctrl-C.', 180_000);
  });
  afterAll(() =>
    tearDown({
      demo: () => demo?.stop(),
      redis: () => redis?.stop(),
      dir: () => rmSync(dir, { recursive: true, force: true }),
    }),
  );

  it("ends what the last run left, so its banner is true again, and revokes the last run's keys", async () => {
    const before = demo.output;
    expect(before).toMatch(/active +alice \(HELPDESK\) controls WS-1/);
    expect(before).not.toContain('Restarted:');
    expect(await demo.stop()).toBe(0);
    demo = RcflowProcess.start('api', env);
    await demo.waitFor('Stop with Ctrl-C.', 180_000);
    expect(demo.output).toMatch(/active +alice \(HELPDESK\) controls WS-1/);
    expect(demo.output).toMatch(/rejected +bob \(not a permitted viewer\) asks for WS-2/);
    expect(demo.output).toMatch(/rejected +helpdesk-bot for alice: remote assistance on WS-3/);
    expect(demo.output).toContain(
      'Restarted: ended 1 session(s) the previous run left open, revoked its 6 API key(s) and 1 unused enrolment token(s).',
    );
    const oldAdmin = /admin +(rcf_\S+)/.exec(before)![1];
    const newAdmin = /admin +(rcf_\S+)/.exec(demo.output)![1];
    expect(newAdmin).not.toBe(oldAdmin);
    const api = new Api(base);
    expect((await api.as(oldAdmin).get('/v1/sessions')).status).toBe(401);
    // The first run's WS-1 session was ended by the restart, on the record, by the demo administrator.
    const firstWs1 = /controls WS-1.*\n\s+\S+\/v1\/sessions\/(\S+)/.exec(before)![1];
    const admin = api.as(newAdmin);
    expect((await admin.get(`/v1/sessions/${firstWs1}`)).body).toMatchObject({ state: 'ended' });
    const demoAdmin = ((await admin.get('/v1/principals?name=demo-admin')).body as { items: Json[] }).items[0].id as string;
    const events = (await admin.get(`/v1/audit?sessionId=${firstWs1}&action=session.ended`)).body.items as Json[];
    expect(events).toEqual([
      expect.objectContaining({ outcome: 'ended', reason: 'demo restarted', actor: { id: demoAdmin, kind: 'principal' } }),
    ]);
  });
});
