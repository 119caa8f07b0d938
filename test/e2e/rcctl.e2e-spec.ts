import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RcflowProcess, waitUntil } from '../support/processes';
import { freePort } from '../support/redis-server';
import { Stack, addDevice, seedOperatorWorld, sessionReaches, startStack } from '../support/stack';

jest.setTimeout(180_000);

const ROOT = join(__dirname, '..', '..');
const RCCTL = join(ROOT, 'dist', 'apps', 'rcctl', 'src', 'main.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * rcctl as an operator runs it: the compiled CLI (its shebang and executable bit included) as a
 * child process, with HOME in a temporary directory so that its login lands there.
 */
function rcctl(home: string, args: string[], opts: { env?: Record<string, string>; stdin?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(RCCTL, args, {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: home, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(opts.stdin ?? '');
  });
}

const jsonLines = (s: string) =>
  s
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));

describe('rcctl (the compiled CLI against api + worker processes)', () => {
  let stack: Stack;
  let url: string;
  let home: string;
  let keys: { alice: string; bob: string; admin: string };
  const ids: Record<string, string> = {};
  const sessions: Record<string, string> = {};

  beforeAll(async () => {
    stack = await startStack('rcctl', {
      AGENT_TRANSPORT: 'loopback',
      CONSENT_TIMEOUT_MS: '60000',
      LOOPBACK_AGENT: JSON.stringify({
        byHostname: { 'PC-DENY': { consent: 'deny' }, 'PC-WAITS': { consent: 'silent' }, 'PC-SLOW': { latencyMs: 4000 } },
      }),
    });
    url = stack.apis[0].api.base;
    const world = await seedOperatorWorld(stack.admin);
    Object.assign(ids, world.ids);
    for (const host of ['PC-1', 'PC-2', 'PC-3', 'PC-DENY', 'PC-WAITS', 'PC-SLOW'])
      ids[host] = await addDevice(stack.admin, ids.desks, host);
    keys = { alice: world.keys.alice, bob: world.keys.bob, admin: stack.admin.key! };
    home = mkdtempSync(join(tmpdir(), 'rcctl-home-'));
  });

  afterAll(async () => {
    await stack?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('login checks the key, keeps it in a 0600 file in a 0700 directory, and never prints it', async () => {
    const r = await rcctl(home, ['login', '--url', url], { stdin: `${keys.alice}\n` });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const path = join(home, '.config', 'rcflow', 'config.json');
    expect(r.stdout).toBe(`Logged in to ${url} as alice (user); key kept in ${path} (mode 0600)\n`);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(home, '.config', 'rcflow')).mode & 0o777).toBe(0o700);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ url, key: keys.alice });
    const secret = keys.alice.split('.')[1];
    expect(r.stdout + r.stderr).not.toContain(secret);

    const who = await rcctl(home, ['whoami', '--json']);
    expect(who.code).toBe(0);
    expect(JSON.parse(who.stdout)).toMatchObject({ url, principal: { id: ids.alice, name: 'alice', kind: 'user' }, groups: ['HELPDESK'] });
  });

  it('request --wait --json follows a session through its states to active and exits 0', async () => {
    const r = await rcctl(home, ['request', '--device', ids['PC-1'], '--reason', 'printer', '--wait', '--json', '--timeout', '90s']);
    expect(r.code).toBe(0);
    // Live from the event stream (the requester sees her session's events): no note about polling.
    expect(r.stderr).toBe('');
    const lines = jsonLines(r.stdout);
    const accepted = lines[0];
    expect(accepted).toMatchObject({ kind: 'accepted', state: 'requested', id: expect.any(String) });
    expect(lines.filter((l) => l.kind === 'state').map((l) => l.state)).toEqual([
      'requested',
      'validating',
      'eligible',
      'pushing_settings',
      'awaiting_consent',
      'active',
    ]);
    expect(lines.at(-1)).toEqual({ kind: 'outcome', sessionId: accepted.id, state: 'active', exitCode: 0 });
    // What rcctl said is what the API holds.
    expect((await stack.admin.get(`/v1/sessions/${accepted.id}`)).body).toMatchObject({
      state: 'active',
      reason: 'printer',
      viewerId: ids.alice,
    });
    sessions.active = accepted.id;
  });

  it('finds device and viewer by name, and requests on behalf of another (administrator)', async () => {
    const r = await rcctl(
      home,
      ['request', '--device', 'pc-3', '--viewer', 'alice', '--type', 'remote_control', '--access', 'view', '--wait'],
      {
        env: { RCFLOW_API_KEY: keys.admin },
      },
    );
    expect(r.code).toBe(0);
    const id = /Session ([0-9a-f-]{36}) is active\./.exec(r.stdout)![1];
    expect((await stack.admin.get(`/v1/sessions/${id}`)).body).toMatchObject({
      deviceId: ids['PC-3'],
      viewerId: ids.alice,
      access: 'view',
    });
    expect(r.stdout).toMatch(/\d\d:\d\d:\d\d {2}requested\n[\s\S]*\d\d:\d\d:\d\d {2}active\n/);
  });

  it('exits 2 when the eligibility checks reject the request, and why names the failing check', async () => {
    const r = await rcctl(home, ['request', '--device', ids['PC-2'], '--access', 'view', '--wait'], { env: { RCFLOW_API_KEY: keys.bob } });
    expect(r.code).toBe(2);
    const id = /Session ([0-9a-f-]{36}) was rejected by the eligibility checks:/.exec(r.stdout)![1];
    expect(r.stdout).toMatch(/ {2}permitted_viewer: viewer bob is not in permitted viewers \[HELPDESK\]/);
    expect((await stack.admin.get(`/v1/sessions/${id}`)).body.state).toBe('rejected');

    const why = await rcctl(home, ['why', id], { env: { RCFLOW_API_KEY: keys.bob } });
    expect(why.code).toBe(0);
    expect(why.stdout).toContain(`Session ${id} (rejected): NOT eligible: permitted_viewer failed`);
    expect(why.stdout).toMatch(/FAIL +\d+ permitted_viewer +viewer bob is not in permitted viewers \[HELPDESK\]/);
    const whyJson = JSON.parse((await rcctl(home, ['why', id, '--json'], { env: { RCFLOW_API_KEY: keys.bob } })).stdout);
    expect(whyJson.checks.filter((c: { passed: boolean }) => !c.passed).map((c: { id: string }) => c.id)).toEqual(['permitted_viewer']);
  });

  it('exits 2 when the user at the device says no, and 4 when nobody answers before --timeout', async () => {
    const denied = await rcctl(home, ['request', '--device', ids['PC-DENY'], '--wait']);
    expect(denied.code).toBe(2);
    expect(denied.stdout).toMatch(/was denied by the user at the device/);

    const waits = await rcctl(home, ['request', '--device', ids['PC-WAITS'], '--wait', '--json', '--timeout', '5s']);
    expect(waits.code).toBe(4);
    const lines = jsonLines(waits.stdout);
    const id = lines[0].id as string;
    expect(lines.at(-1)).toMatchObject({ kind: 'timeout', sessionId: id, exitCode: 4 });
    sessions.waiting = id;
  });

  it('cancel stops a waiting session and ends an active one', async () => {
    await sessionReaches(stack.admin, sessions.waiting, ['awaiting_consent']);
    const c = await rcctl(home, ['cancel', sessions.waiting, '--reason', 'user called back']);
    expect(c).toMatchObject({ code: 0, stdout: `Session ${sessions.waiting} cancelled.\n` });
    const again = await rcctl(home, ['cancel', sessions.waiting]);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe('rcctl: 409 conflict — session is already cancelled\n');

    const e = await rcctl(home, ['cancel', sessions.active, '--json']);
    expect(e.code).toBe(0);
    expect(JSON.parse(e.stdout)).toMatchObject({ id: sessions.active, state: 'ended' });
  });

  it('list --json and show --json parse and agree with the API', async () => {
    const l = await rcctl(home, ['list', '--json', '--limit', '50']);
    expect(l.code).toBe(0);
    const page = JSON.parse(l.stdout);
    const api = (await stack.admin.as(keys.alice).get('/v1/sessions?limit=50')).body;
    expect(page.items.map((s: { id: string }) => s.id)).toEqual(api.items.map((s: { id: string }) => s.id));
    expect(page.items.map((s: { id: string }) => s.id)).toEqual(expect.arrayContaining([sessions.active, sessions.waiting]));

    const filtered = JSON.parse((await rcctl(home, ['list', '--json', '--state', 'cancelled'])).stdout);
    expect(filtered.items.map((s: { id: string }) => s.id)).toEqual([sessions.waiting]);

    const show = await rcctl(home, ['show', sessions.active]);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain(`Session ${sessions.active}: ended`);
    expect(show.stdout).toMatch(/Timeline:\n(.*\n)*.*requested(.*\n)*.*active(.*\n)*.*ended/);
  });

  it('audit tail --json prints recent events oldest first; verify checks the chain', async () => {
    const admin = { RCFLOW_API_KEY: keys.admin };
    const t = await rcctl(home, ['audit', 'tail', '--json', '--limit', '5', '--session', sessions.active], { env: admin });
    expect(t.code).toBe(0);
    const events = jsonLines(t.stdout);
    expect(events.map((e) => e.action)).toEqual([
      'session.eligible',
      'session.pushing_settings',
      'session.awaiting_consent',
      'session.active',
      'session.ended',
    ]);
    expect(events.every((e) => e.sessionId === sessions.active)).toBe(true);

    const v = await rcctl(home, ['verify', '--json'], { env: admin });
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, problems: [] });
    // alice holds no audit.read: one clear line, non-zero.
    const refused = await rcctl(home, ['verify']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe('rcctl: 403 forbidden — alice lacks the permission audit.read\n');
  });

  it('a bad key, a malformed key and an unreachable API each give one clear line and exit 1', async () => {
    const unknown = `rcf_00000000-0000-4000-8000-000000000000.${'A'.repeat(43)}`;
    const bad = await rcctl(home, ['list'], { env: { RCFLOW_API_KEY: unknown } });
    expect(bad).toEqual({ code: 1, stdout: '', stderr: 'rcctl: 401 unauthenticated — the API key is unknown, revoked or expired\n' });

    const login = await rcctl(mkdtempSync(join(tmpdir(), 'rcctl-home-')), ['login', '--url', url], { stdin: `${unknown}\n` });
    expect(login.code).toBe(1);
    expect(login.stderr).toBe('rcctl: 401 unauthenticated — the API key is unknown, revoked or expired\n');

    const malformed = await rcctl(home, ['list', '--key', 'rcf_oops-my-secret']);
    expect(malformed).toEqual({ code: 1, stdout: '', stderr: 'rcctl: --key is not an rcflow API key (rcf_<id>.<secret>)\n' });

    const port = await freePort();
    const down = await rcctl(home, ['list', '--url', `http://127.0.0.1:${port}`]);
    expect(down).toEqual({
      code: 1,
      stdout: '',
      stderr: `rcctl: cannot reach rcflow at http://127.0.0.1:${port} (connection refused); is the API running? Set the address with --url or RCFLOW_URL\n`,
    });
  });

  it('watch prints events live and, after the API restarts, resumes with Last-Event-ID: every event once, none missing', async () => {
    const [newest] = (await stack.admin.get('/v1/audit?limit=1')).body.items;
    // Started after the newest event so far: whenever it connects, it replays from there (no race with the request below).
    const watch = spawn(RCCTL, ['watch', '--device', ids['PC-SLOW'], '--json', '--after', newest.id], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    watch.stdout.on('data', (d) => (stdout += d));
    watch.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => watch.on('exit', (code) => resolve(code)));
    try {
      const req = await rcctl(home, ['request', '--device', ids['PC-SLOW'], '--json']);
      const id = JSON.parse(req.stdout).id as string;
      const printed = () => jsonLines(stdout).filter((e) => e.sessionId === id);
      await waitUntil(async () => printed().some((e) => e.action === 'session.requested'), 30_000, 'watch to print session.requested');

      // The API goes away while the worker carries the session on (the agent answers after 4 s).
      const api = stack.apis[0];
      await api.proc.stop('SIGTERM');
      await waitUntil(async () => stderr.includes('event stream lost'), 30_000, 'watch to notice the lost stream');
      const linesWhenLost = printed().length;
      await waitUntil(
        async () => (await stack.ds.query('SELECT state FROM sessions WHERE id = $1', [id]))[0]?.state === 'active',
        60_000,
        'the worker to carry the session to active while the API is down',
      );
      api.proc = RcflowProcess.start('api', { ...stack.env, PORT: new URL(api.api.base).port });
      await api.proc.waitFor('api listening', 90_000);
      await waitUntil(async () => printed().some((e) => e.action === 'session.active'), 60_000, 'watch to print session.active');

      const events = printed();
      expect(events.map((e) => e.action)).toEqual([
        'session.requested',
        'session.validating',
        'session.eligible',
        'session.pushing_settings',
        'session.awaiting_consent',
        'session.active',
      ]);
      expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
      // Some of them happened while the stream was down, and came through the resumed one.
      expect(linesWhenLost).toBeLessThan(events.length);
      expect(stderr).toMatch(/event stream back; resumed after the last event shown/);
      // The same objects as the audit list.
      const audit = (await stack.admin.get(`/v1/audit?sessionId=${id}&limit=50`)).body.items.reverse();
      expect(events).toEqual(audit.slice(0, 6));
    } finally {
      watch.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });

  it('logout forgets the login', async () => {
    expect((await rcctl(home, ['logout'])).code).toBe(0);
    const after = await rcctl(home, ['list']);
    expect(after).toMatchObject({
      code: 1,
      stderr: 'rcctl: not logged in: run rcctl login --url <url> (or set RCFLOW_API_KEY, or pass --key)\n',
    });
  });
});
