import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Io } from './context';
import { run } from './program';

const KEY = `rcf_11111111-2222-4333-8444-555555555555.${'S'.repeat(43)}`;
const SECRET = 'S'.repeat(43);
const DEVICE = 'aaaaaaaa-0000-4000-8000-000000000001';
const SESSION = 'bbbbbbbb-0000-4000-8000-000000000002';

interface Seen {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
}
type Handler = (req: Seen) => Response | Promise<Response>;

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
const apiError = (status: number, code: string, message: string) => json({ error: { status, code, message } }, status);

/** An event stream that sends `text` and then stays open (silent) until the client goes. */
const eventStream = (text: string) =>
  new Response(
    new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(text));
      },
    }),
    { status: 200, headers: { 'content-type': 'text/event-stream' } },
  );

const auditEvent = (seq: number, state: string, reason: string | null = null) => ({
  id: String(100 + seq),
  stream: `session:${SESSION}`,
  seq,
  occurredAt: '2026-11-29T21:00:00.000Z',
  actor: { id: null, kind: 'system' },
  action: `session.${state}`,
  outcome: state,
  sessionId: SESSION,
  deviceId: DEVICE,
  viewerId: null,
  ticketRef: null,
  reason,
  data: {},
});
const sse = (...events: ReturnType<typeof auditEvent>[]) =>
  events.map((e) => `id: ${e.id}\nevent: ${e.action}\ndata: ${JSON.stringify(e)}\n\n`).join(': heartbeat\n\n');
const timeline = (...states: string[]) =>
  states.map((state, i) => ({
    seq: i + 1,
    at: '2026-11-29T21:00:00.000Z',
    action: `session.${state}`,
    state,
    actor: { id: null, kind: 'system' },
    reason: null,
    data: {},
  }));

describe('rcctl commands (in-process, against a fake API)', () => {
  let home: string;
  let seen: Seen[];
  let out: string[];
  let err: string[];
  let routes: Record<string, Handler>;
  let interrupt: AbortController;

  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'rcctl-home-'));
    seen = [];
    out = [];
    err = [];
    routes = {};
    interrupt = new AbortController();
  });
  afterEach(() => rmSync(home, { recursive: true, force: true }));

  const io = (over: Partial<Io> = {}): Io => ({
    env: { HOME: home, RCFLOW_URL: 'http://api.test', RCFLOW_API_KEY: KEY },
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    fetch: (async (input: string, init: RequestInit = {}) => {
      const url = new URL(input);
      const req: Seen = {
        method: init.method ?? 'GET',
        path: url.pathname + url.search,
        headers: (init.headers ?? {}) as Record<string, string>,
        body: typeof init.body === 'string' ? JSON.parse(init.body) : undefined,
      };
      seen.push(req);
      const handler = routes[`${req.method} ${url.pathname}`];
      return handler ? handler(req) : apiError(404, 'not_found', `Cannot ${req.method} ${url.pathname}`);
    }) as unknown as typeof fetch,
    now: () => Date.UTC(2026, 10, 29, 21),
    readSecret: () => Promise.reject(new Error('no terminal in tests')),
    signal: interrupt.signal,
    newIdempotencyKey: () => 'rcctl-fixed-key',
    sleep: async () => undefined,
    ...over,
  });
  const rcctl = (args: string[], over: Partial<Io> = {}) => run(['node', 'rcctl', ...args], io(over));
  const printed = () => [...out, ...err].join('\n');

  describe('request', () => {
    it('sends the body the API takes, with a generated Idempotency-Key, and prints the answer as JSON', async () => {
      routes['POST /v1/sessions'] = () => json({ id: SESSION, state: 'requested', url: `/v1/sessions/${SESSION}` }, 202);
      const code = await rcctl([
        'request',
        '--device',
        DEVICE,
        '--type',
        'remote_assistance',
        '--access',
        'view',
        '--reason',
        ' printer ',
        '--ticket',
        'INC-1',
        '--json',
      ]);
      expect(code).toBe(0);
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({
        method: 'POST',
        path: '/v1/sessions',
        body: { deviceId: DEVICE, type: 'remote-assistance', access: 'view', reason: 'printer', ticketRef: 'INC-1' },
      });
      expect(seen[0].headers['idempotency-key']).toBe('rcctl-fixed-key');
      expect(seen[0].headers.authorization).toBe(`Bearer ${KEY}`);
      expect(out.map((l) => JSON.parse(l))).toEqual([{ id: SESSION, state: 'requested', url: `/v1/sessions/${SESSION}` }]);
    });

    it('retries after a dropped connection with the same Idempotency-Key', async () => {
      let calls = 0;
      routes['POST /v1/sessions'] = () => {
        if (++calls === 1) throw new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } });
        return json({ id: SESSION, state: 'requested', url: '' }, 202);
      };
      expect(await rcctl(['request', '--device', DEVICE])).toBe(0);
      expect(seen.map((s) => s.headers['idempotency-key'])).toEqual(['rcctl-fixed-key', 'rcctl-fixed-key']);
      expect(err).toEqual([
        'rcctl: cannot reach rcflow at http://api.test (connection reset); is the API running? Set the address with --url or RCFLOW_URL; retrying with the same Idempotency-Key',
      ]);
    });

    it('resolves a device name through the device list, exactly and without regard to case', async () => {
      routes['GET /v1/devices'] = () =>
        json({
          items: [
            { id: 'aaaaaaaa-0000-4000-8000-00000000000f', hostname: 'WS-10' },
            { id: DEVICE, hostname: 'WS-1' },
          ],
          nextCursor: null,
        });
      routes['POST /v1/sessions'] = () => json({ id: SESSION, state: 'requested', url: '' }, 202);
      expect(await rcctl(['request', '--device', 'ws-1'])).toBe(0);
      expect(seen[0].path).toBe('/v1/devices?hostname=ws-1&limit=100');
      expect(seen[1].body).toMatchObject({ deviceId: DEVICE });
    });

    it('says what to do when a device name cannot be looked up', async () => {
      routes['GET /v1/devices'] = () => apiError(403, 'forbidden', 'alice lacks the permission admin.read');
      expect(await rcctl(['request', '--device', 'WS-1'])).toBe(1);
      expect(err).toEqual([`rcctl: finding the device "WS-1" by name needs the permission admin.read; pass the device's id instead`]);
    });

    it.each([
      [['request'], /required option '--device <id\|name>' not specified/],
      [['request', '--device', 'not a host'], /neither a device id \(UUID\) nor a host name/],
      [['request', '--device', DEVICE, '--type', 'telnet'], /not a session type/],
      [['request', '--device', DEVICE, '--timeout', '0s'], /more than 0/],
      [['request', '--device', DEVICE, '--timeout', 'later'], /not a duration/],
      [['show', 'nope'], /not a UUID/],
      [['list', '--limit', '1000'], /from 1 to 500/],
      [['frobnicate'], /unknown command 'frobnicate'/],
    ])('refuses %j before calling the API (exit 1)', async (args, message) => {
      expect(await rcctl(args)).toBe(1);
      expect(seen).toEqual([]);
      expect(err.join('\n')).toMatch(message);
    });
  });

  describe('request --wait', () => {
    beforeEach(() => {
      routes['POST /v1/sessions'] = () => json({ id: SESSION, state: 'requested', url: '' }, 202);
    });

    it('follows the states from the event stream after catching up from the timeline, and exits 0 when active', async () => {
      routes['GET /v1/events'] = () =>
        eventStream(
          sse(
            auditEvent(1, 'requested'),
            auditEvent(2, 'validating'),
            auditEvent(3, 'eligible'),
            auditEvent(4, 'pushing_settings'),
            auditEvent(5, 'awaiting_consent'),
            auditEvent(6, 'active'),
          ),
        );
      routes[`GET /v1/sessions/${SESSION}`] = () =>
        json({ id: SESSION, state: 'validating', timeline: timeline('requested', 'validating') });
      const code = await rcctl(['request', '--device', DEVICE, '--wait', '--json']);
      expect(code).toBe(0);
      const lines = out.map((l) => JSON.parse(l));
      expect(lines[0]).toMatchObject({ kind: 'accepted', id: SESSION });
      expect(lines.filter((l) => l.kind === 'state').map((l) => l.state)).toEqual([
        'requested',
        'validating',
        'eligible',
        'pushing_settings',
        'awaiting_consent',
        'active',
      ]);
      expect(lines.at(-1)).toEqual({ kind: 'outcome', sessionId: SESSION, state: 'active', exitCode: 0 });
      expect(seen.find((s) => s.path.startsWith('/v1/events'))!.path).toBe(`/v1/events?sessionId=${SESSION}`);
    });

    it('exits 2 when the checks reject it, naming the failing check', async () => {
      routes['GET /v1/events'] = () => eventStream(sse(auditEvent(2, 'validating'), auditEvent(3, 'rejected', 'permitted_viewer')));
      routes[`GET /v1/sessions/${SESSION}`] = () => json({ id: SESSION, state: 'requested', timeline: timeline('requested') });
      routes[`GET /v1/sessions/${SESSION}/decision`] = () =>
        json({
          eligible: false,
          consentRule: 'prompt_user',
          evaluatedAt: '',
          checks: [
            { id: 'rbac_scope', number: 1, passed: true, detail: 'ok' },
            { id: 'permitted_viewer', number: 2, passed: false, detail: 'viewer bob is not in permitted viewers [HELPDESK]' },
          ],
        });
      expect(await rcctl(['request', '--device', DEVICE, '--wait'])).toBe(2);
      expect(out).toContain(`Session ${SESSION} was rejected by the eligibility checks:`);
      expect(out).toContain('  permitted_viewer: viewer bob is not in permitted viewers [HELPDESK]');
    });

    it.each([
      ['denied', 2],
      ['consent_timeout', 3],
      ['failed', 3],
      ['cancelled', 3],
    ])('exits by outcome: %s → %i', async (state, code) => {
      routes['GET /v1/events'] = () => eventStream(sse(auditEvent(2, state)));
      routes[`GET /v1/sessions/${SESSION}`] = () => json({ id: SESSION, state: 'requested', timeline: timeline('requested') });
      expect(await rcctl(['request', '--device', DEVICE, '--wait'])).toBe(code);
    });

    it('exits 4 when the timeout runs out first', async () => {
      routes['GET /v1/events'] = () => eventStream(': nothing yet\n\n');
      routes[`GET /v1/sessions/${SESSION}`] = () =>
        json({ id: SESSION, state: 'awaiting_consent', timeline: timeline('requested', 'awaiting_consent') });
      expect(await rcctl(['request', '--device', DEVICE, '--wait', '--timeout', '200ms'])).toBe(4);
      expect(err.at(-1)).toMatch(/still awaiting_consent after 0 s; it goes on/);
    });

    it('polls the session instead when the event stream is not there, and says so', async () => {
      routes['GET /v1/events'] = () => apiError(404, 'not_found', 'Cannot GET /v1/events');
      let polls = 0;
      routes[`GET /v1/sessions/${SESSION}`] = () => {
        polls++;
        return json({
          id: SESSION,
          state: 'x',
          timeline:
            polls < 3
              ? timeline('requested')
              : timeline('requested', 'validating', 'eligible', 'pushing_settings', 'awaiting_consent', 'active'),
        });
      };
      expect(await rcctl(['request', '--device', DEVICE, '--wait', '--json'])).toBe(0);
      expect(polls).toBe(3);
      expect(
        out
          .map((l) => JSON.parse(l))
          .filter((l) => l.kind === 'state')
          .map((l) => l.state),
      ).toEqual(['requested', 'validating', 'eligible', 'pushing_settings', 'awaiting_consent', 'active']);
      expect(err).toEqual(['rcctl: live events unavailable (404 not_found — Cannot GET /v1/events); polling the session instead']);
    });
  });

  describe('errors', () => {
    it("prints the API's error as one line and exits 1", async () => {
      routes['GET /v1/audit/verify'] = () => apiError(403, 'forbidden', 'alice lacks the permission audit.read');
      expect(await rcctl(['verify'])).toBe(1);
      expect(err).toEqual(['rcctl: 403 forbidden — alice lacks the permission audit.read']);
      expect(out).toEqual([]);
    });

    it('never echoes a malformed key', async () => {
      const wrong = 'rcf_my-secret-typo';
      expect(await rcctl(['list', '--key', wrong])).toBe(1);
      expect(err).toEqual(['rcctl: --key is not an rcflow API key (rcf_<id>.<secret>)']);
      expect(printed()).not.toContain('secret-typo');
    });

    it('says when nobody is logged in', async () => {
      expect(await rcctl(['list'], { env: { HOME: home } })).toBe(1);
      expect(err).toEqual(['rcctl: not logged in: run rcctl login --url <url> (or set RCFLOW_API_KEY, or pass --key)']);
    });
  });

  describe('login and logout', () => {
    it('checks the key, keeps it 0600 and never prints it', async () => {
      routes['GET /v1/whoami'] = (req) =>
        req.headers.authorization === `Bearer ${KEY}`
          ? json({ principal: { id: 'p', name: 'alice', kind: 'user' }, groups: [], grants: [] })
          : apiError(401, 'unauthenticated', 'no');
      const code = await rcctl(['login', '--url', 'http://rc.test:3000/'], { env: { HOME: home }, readSecret: async () => `${KEY}\n` });
      expect(code).toBe(0);
      const path = join(home, '.config', 'rcflow', 'config.json');
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ url: 'http://rc.test:3000', key: KEY });
      expect(out).toEqual([`Logged in to http://rc.test:3000 as alice (user); key kept in ${path} (mode 0600)`]);
      expect(printed()).not.toContain(SECRET);

      // The stored login serves the next command.
      routes['GET /v1/sessions'] = () => json({ items: [], nextCursor: null });
      expect(await rcctl(['list', '--json'], { env: { HOME: home } })).toBe(0);
      expect(seen.at(-1)).toMatchObject({ path: '/v1/sessions?limit=20', headers: { authorization: `Bearer ${KEY}` } });

      expect(await rcctl(['logout'], { env: { HOME: home } })).toBe(0);
      expect(existsSync(path)).toBe(false);
    });

    it('replaces a broken config file; flags and environment work around one', async () => {
      const dir = join(home, '.config', 'rcflow');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'config.json'), 'garbage');
      routes['GET /v1/sessions'] = () => json({ items: [], nextCursor: null });
      expect(await rcctl(['list', '--json'], { env: { HOME: home } })).toBe(1);
      expect(err).toEqual([`rcctl: ${join(dir, 'config.json')} is not JSON: run rcctl login again`]);
      expect(await rcctl(['list', '--json'])).toBe(0);
      routes['GET /v1/whoami'] = () => json({ principal: { id: 'p', name: 'alice', kind: 'user' }, groups: [], grants: [] });
      expect(await rcctl(['login', '--url', 'http://rc.test'], { env: { HOME: home, RCFLOW_API_KEY: KEY } })).toBe(0);
      expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))).toEqual({ url: 'http://rc.test', key: KEY });
    });

    it('stores nothing when the API refuses the key', async () => {
      routes['GET /v1/whoami'] = () => apiError(401, 'unauthenticated', 'the API key is unknown, revoked or expired');
      expect(await rcctl(['login', '--json'], { env: { HOME: home, RCFLOW_API_KEY: KEY } })).toBe(1);
      expect(err).toEqual(['rcctl: 401 unauthenticated — the API key is unknown, revoked or expired']);
      expect(existsSync(join(home, '.config', 'rcflow', 'config.json'))).toBe(false);
    });
  });

  describe('reads', () => {
    it('why lists every check with the failing ones marked', async () => {
      routes[`GET /v1/sessions/${SESSION}/decision`] = () =>
        json({
          sessionId: SESSION,
          state: 'rejected',
          eligible: false,
          consentRule: 'prompt_user',
          evaluatedAt: '2026-11-29T21:00:00Z',
          checks: [
            { id: 'permitted_viewer', number: 2, passed: false, detail: 'viewer bob is not in permitted viewers [HELPDESK]' },
            { id: 'rbac_scope', number: 1, passed: true, detail: 'bob holds session.control' },
          ],
        });
      expect(await rcctl(['why', SESSION])).toBe(0);
      expect(out[0]).toBe(`Session ${SESSION} (rejected): NOT eligible: permitted_viewer failed`);
      expect(out[1]).toMatch(/^ {2}ok +1 rbac_scope +bob holds session.control$/);
      expect(out[2]).toMatch(/^ {2}FAIL +2 permitted_viewer +viewer bob is not in permitted viewers \[HELPDESK\]$/);
    });

    it('audit tail prints the newest events oldest first, and --follow resumes the stream after the newest', async () => {
      routes['GET /v1/audit'] = () => json({ items: [auditEvent(3, 'active'), auditEvent(2, 'validating')], nextCursor: null });
      routes['GET /v1/events'] = () => {
        setTimeout(() => interrupt.abort(), 20);
        return eventStream(sse(auditEvent(4, 'ended')));
      };
      expect(await rcctl(['audit', 'tail', '--follow', '--json', '--limit', '2', '--action', 'session.active'])).toBe(0);
      expect(out.map((l) => JSON.parse(l).seq)).toEqual([2, 3, 4]);
      expect(seen[0].path).toBe('/v1/audit?action=session.active&limit=2');
      const events = seen.find((s) => s.path.startsWith('/v1/events'))!;
      expect(events.path).toBe('/v1/events?types=session.active');
      expect(events.headers['last-event-id']).toBe('103');
    });

    it('watch prints one line per event with the filters as query parameters, and ends at Ctrl-C with 0', async () => {
      routes['GET /v1/events'] = () => {
        setTimeout(() => interrupt.abort(), 20);
        return eventStream(sse(auditEvent(6, 'active'), auditEvent(7, 'ended', 'user called back')));
      };
      expect(await rcctl(['watch', '--session', SESSION, '--ticket', 'INC-1', '--types', 'session.active,session.ended'])).toBe(0);
      expect(seen[0].path).toBe(`/v1/events?sessionId=${SESSION}&ticketRef=INC-1&types=session.active%2Csession.ended`);
      expect(out).toEqual([
        expect.stringMatching(/^\d\d:\d\d:\d\d {2}session\.active +session bbbbbbbb {2}device aaaaaaaa {2}by system$/),
        expect.stringMatching(/^\d\d:\d\d:\d\d {2}session\.ended +session bbbbbbbb {2}device aaaaaaaa {2}by system {2}— user called back$/),
      ]);
    });

    it('verify exits 2 when the chain breaks', async () => {
      routes['GET /v1/audit/verify'] = () =>
        json({
          ok: false,
          eventsChecked: 5,
          streamsChecked: 2,
          problems: [{ stream: 'session:x', seq: 3, eventId: '9', problem: 'hash mismatch' }],
        });
      expect(await rcctl(['verify'])).toBe(2);
      expect(out).toEqual(['The audit trail does NOT verify (1 problem(s) shown):', '  session:x #3: hash mismatch']);
    });
  });
});
