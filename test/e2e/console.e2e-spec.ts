import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, BrowserContext, Page, chromium } from 'playwright-core';
import { Api } from '../support/http';
import { OperatorWorld, Stack, addDevice, seedOperatorWorld, sessionReaches, startStack } from '../support/stack';
import { tearDown } from '../support/teardown';

jest.setTimeout(300_000);

const ROOT = join(__dirname, '..', '..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = join(ROOT, 'test-results', 'console');
const SIGNIN_BUDGET = 12;

/**
 * The web console in headless Chromium (Debian's, driven by playwright-core) against the real
 * processes: an auditor's journey through the screens, a collection-scoped auditor, and the
 * session cookie's protections (httpOnly, SameSite=Strict, CSRF header, the key kept nowhere).
 */
describe('web console (headless Chromium, real api and worker)', () => {
  let stack: Stack;
  let starting: Promise<Stack> | undefined;
  let world: OperatorWorld;
  let admin: Api;
  let browser: Browser;
  let base: string;
  const keys: Record<string, string> = {};
  const ids: Record<string, string> = {};

  const principal = async (name: string, role: string, collectionIds: string[] | null) => {
    const id = (await admin.post('/v1/principals', { name, kind: 'user' })).body.id as string;
    expect((await admin.post('/v1/role-assignments', { principalId: id, role, collectionIds })).status).toBe(201);
    keys[name] = (await admin.post('/v1/api-keys', { principalId: id, name: 'console' })).body.key;
    ids[name] = id;
  };

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run scripts/test.sh (it installs Debian's chromium)`);
    stack = await (starting = startStack('console', { AGENT_TRANSPORT: 'loopback', RATE_LIMIT_SIGNIN_PER_MINUTE: String(SIGNIN_BUDGET) }));
    admin = stack.admin;
    base = stack.apis[0].api.base;
    world = await seedOperatorWorld(admin);
    ids['WS-1'] = await addDevice(admin, world.ids.desks, 'WS-1');
    ids['WS-2'] = await addDevice(admin, world.ids.desks, 'WS-2');
    ids['SRV-9'] = await addDevice(admin, world.ids.servers, 'SRV-9');
    await principal('audrey', 'read_only_auditor', null);
    await principal('dora', 'read_only_auditor', [world.ids.desks]);
    const alice = admin.as(world.keys.alice);
    const bob = admin.as(world.keys.bob);
    const a = await alice.post('/v1/sessions', { deviceId: ids['WS-1'], type: 'remote-control', access: 'full', reason: 'printer' });
    const b = await bob.post('/v1/sessions', { deviceId: ids['WS-2'], type: 'remote-control', access: 'full', ticketRef: 'INC-4711' });
    expect([a.status, b.status]).toEqual([202, 202]);
    ids.aliceSession = a.body.id;
    ids.bobSession = b.body.id;
    await sessionReaches(alice, a.body.id, ['active']);
    await sessionReaches(bob, b.body.id, ['rejected']);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  afterAll(() =>
    tearDown({
      browser: () => browser?.close(),
      stack: async () => (stack ?? (await starting?.catch(() => undefined)))?.stop(),
    }),
  );

  /** Runs a journey in a fresh browser context; on failure saves a screenshot and says where. */
  const journey = async (
    name: string,
    body: (page: Page, context: BrowserContext) => Promise<void>,
    viewport = { width: 1280, height: 900 },
  ) => {
    const context = await browser.newContext({ acceptDownloads: true, viewport });
    const page = await context.newPage();
    try {
      await body(page, context);
    } catch (err) {
      mkdirSync(SHOTS, { recursive: true });
      const file = join(SHOTS, `${name}-${Date.now()}.png`);
      await page.screenshot({ path: file, fullPage: true }).catch(() => undefined);
      process.stderr.write(`console e2e "${name}" failed; screenshot: ${file}\n`);
      throw err;
    } finally {
      await context.close();
    }
  };

  const signIn = async (page: Page, who: string) => {
    await page.goto(`${base}/console`);
    await page.getByLabel('API key').fill(keys[who] ?? (world.keys as Record<string, string>)[who]);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('signed-in-as').getByText(who, { exact: true }).waitFor();
  };

  const consoleCookie = async (context: BrowserContext) => (await context.cookies()).find((c) => c.name === 'rcflow_console');

  it('serves the console with a strict CSP and no script or style from elsewhere', async () => {
    const r = await fetch(`${base}/console`);
    expect(r.status).toBe(200);
    const csp = r.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await r.text();
    expect(html).toContain('<script type="module" src="/console/app.js">');
    expect(html).not.toMatch(/https?:\/\//);
  });

  it("an auditor signs in, finds bob's refused session and reads why, reads alice's timeline, verifies and exports, signs out", async () => {
    await journey('auditor', async (page, context) => {
      const violations: string[] = [];
      page.on('console', (m) => {
        if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
      });
      await signIn(page, 'audrey');

      // The cookie: httpOnly, SameSite=Strict, and the key itself nowhere in the page.
      const cookie = await consoleCookie(context);
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
      expect(cookie!.value).not.toContain(keys.audrey.split('.')[1]);
      const secret = keys.audrey.split('.')[1];
      // Evaluated in the page (as text: the test project has no DOM types).
      const inPage = await page.evaluate<string>(`JSON.stringify({
        local: Object.entries(localStorage),
        session: Object.entries(sessionStorage),
        cookie: document.cookie,
        html: document.documentElement.outerHTML,
        inputs: [...document.querySelectorAll('input')].map((i) => i.value),
      })`);
      expect(inPage).not.toContain(secret);
      expect(JSON.parse(inPage).cookie).not.toContain('rcflow_console');

      // Find bob's session and read why it was refused.
      await page.getByLabel('Viewer').fill('bob');
      await page.getByLabel('State').selectOption('rejected');
      await page.getByRole('button', { name: 'Apply filters' }).click();
      // The rows on screen once they are those of these filters.
      const shown = page.locator(`[data-shown*='"viewerId":"${world.ids.bob}"']`);
      await shown.waitFor();
      const row = shown.locator(`tr[data-session="${ids.bobSession}"]`);
      await row.getByRole('link', { name: 'WS-2' }).waitFor();
      expect(await shown.locator('tr[data-session]').count()).toBe(1);
      await row.getByRole('link', { name: `Open session ${ids.bobSession}` }).click();
      await page.getByTestId('verdict').getByText('Not eligible').waitFor();
      const checks = page.getByRole('table', { name: 'Every eligibility check with its outcome' });
      expect(await checks.locator('tbody tr').count()).toBe(10);
      const failed = checks.locator('tbody tr.failed');
      const why = failed.filter({ hasText: 'permitted viewers' });
      await why.waitFor();
      expect(await why.innerText()).toMatch(/viewer bob is not in permitted viewers/);
      expect(await page.getByTestId('ticket').innerText()).toBe('INC-4711');

      // alice's session on WS-1 and its timeline, with who made each step.
      await page.goto(`${base}/console#/sessions`);
      await page.getByLabel('Device').fill('WS-1');
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await page
        .locator(`tr[data-session="${ids.aliceSession}"]`)
        .getByRole('link', { name: /^Open session/ })
        .click();
      const timeline = page.getByRole('table', { name: /Every step of this session/ });
      await timeline.getByRole('cell', { name: 'active', exact: true }).first().waitFor();
      await timeline.getByRole('link', { name: 'alice' }).first().waitFor();

      // The device's effective settings, with the set that supplied each value.
      await page.getByRole('link', { name: 'settings and who can control it' }).click();
      const settings = page.getByRole('table', { name: /Each setting with the client settings set/ });
      await settings.getByRole('row').filter({ hasText: 'permittedViewers' }).getByText('Desks RC (order 5)').waitFor();

      // Verify the chain, and export the audit events of the scope.
      await page.getByRole('link', { name: 'Verify & export' }).click();
      await page.getByRole('button', { name: 'Verify now' }).click();
      await page
        .getByTestId('verify-verdict')
        .getByText(/The trail is intact/)
        .waitFor();
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('audit-export').click()]);
      const lines = readFileSync(await download.path(), 'utf8')
        .trim()
        .split('\n');
      expect(lines.length).toBeGreaterThan(5);
      expect(lines.map((l) => JSON.parse(l).action)).toContain('session.rejected');

      // Sign out: the cookie is gone and the session is over on the server, so replaying it is refused.
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByLabel('API key').waitFor();
      expect(await consoleCookie(context)).toBeUndefined();
      const replay = await fetch(`${base}/v1/sessions`, { headers: { cookie: `rcflow_console=${cookie!.value}` } });
      expect(replay.status).toBe(401);
      expect(await page.evaluate(async () => (await fetch('/v1/sessions')).status)).toBe(401);
      expect(violations).toEqual([]);
    });
  });

  it('an auditor runs both ConfigMgr reports, sees a table and a chart, and downloads the CSV', async () => {
    await journey('reports', async (page) => {
      await signIn(page, 'audrey');
      await page.goto(`${base}/console#/reports/computers-by-user`);
      await page.getByLabel('Viewer').fill('alice');
      await page.getByRole('button', { name: 'Run report' }).click();
      const out = page.getByTestId('report-output');
      await out.getByRole('cell', { name: 'WS-1' }).first().waitFor();

      await page.goto(`${base}/console#/reports/remote-control-info`);
      await page.getByRole('button', { name: 'Run report' }).click();
      await out.getByRole('cell', { name: 'WS-1' }).first().waitFor();
      // A list report is charted as rows per outcome.
      await out.locator('figure.chart figcaption').getByText('Rows by Outcome').waitFor();
      expect(await out.locator('figure.chart svg rect').count()).toBe(2);
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('csv-link').click()]);
      expect(download.suggestedFilename()).toMatch(/\.csv$/);
      const csv = readFileSync(await download.path(), 'utf8');
      expect(csv.split('\n').length).toBeGreaterThan(1);
      expect(csv).toContain('WS-1');
    });
  });

  it("an auditor opens WS-1's access review: who can control it, and through what", async () => {
    await journey('access-review', async (page) => {
      await signIn(page, 'audrey');
      await page.goto(`${base}/console#/devices/${ids['WS-1']}`);
      const table = page.getByRole('table', { name: /Every principal who can start a session on WS-1/ });
      await table
        .getByRole('link', { name: /alice|HELPDESK/ })
        .first()
        .waitFor();
      // alice reaches it through HELPDESK: the role assignment, the collection, the permitted-viewer entry, the settings.
      const chain = await table.getByRole('row').filter({ hasText: 'alice (user)' }).first().locator('ol.chain li').allInnerTexts();
      expect(chain.map((step) => step.split(':')[0])).toEqual(['role assignment', 'collection', 'permitted viewer', 'settings']);
      expect(chain[2]).toMatch(/HELPDESK/);
    });
  });

  it('a collection-scoped auditor sees only its collection, at phone width too', async () => {
    await journey(
      'scoped-auditor',
      async (page) => {
        await signIn(page, 'dora');
        await page.getByRole('link', { name: 'Devices' }).click();
        const list = page.getByRole('table', { name: 'Devices in your scope' });
        await list.getByRole('link', { name: 'WS-1' }).waitFor();
        expect(await list.getByRole('link', { name: 'SRV-9' }).count()).toBe(0);
        await page.getByLabel('Hostname starts with').fill('SRV');
        await page.getByRole('button', { name: 'Find devices' }).click();
        await list.getByText('No device found in your scope.').waitFor();
        // Straight to the device's screen: the API answers as if it did not exist.
        await page.goto(`${base}/console#/devices/${ids['SRV-9']}`);
        await page
          .getByRole('alert')
          .getByText(/does not exist or is outside your scope/)
          .waitFor();
        // Verification walks every stream: not for a scoped caller.
        await page.goto(`${base}/console#/verify`);
        await page.getByRole('button', { name: 'Verify now' }).click();
        await page.getByText(/Verification: your role does not allow it/).waitFor();
        // Readable at phone width: nothing wider than the screen but the scrollable tables.
        const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
        expect(overflow).toBeLessThanOrEqual(0);
      },
      { width: 390, height: 844 },
    );
  });

  it('is usable from the keyboard: sign in and reach a screen without a pointer', async () => {
    await journey('keyboard', async (page) => {
      await page.goto(`${base}/console`);
      await page.getByLabel('API key').waitFor();
      await page.keyboard.press('Tab');
      expect(await page.evaluate<string | null>("document.activeElement?.getAttribute('name')")).toBe('apiKey');
      await page.keyboard.type(keys.audrey);
      await page.keyboard.press('Enter');
      await page.getByTestId('signed-in-as').waitFor();
      // Skip link first, then the screens.
      await page.keyboard.press('Tab');
      expect(await page.evaluate<string | null>('document.activeElement?.textContent')).toBe('Skip to content');
      await page.keyboard.press('Tab');
      await page.keyboard.press('Tab');
      expect(await page.evaluate<string | null>('document.activeElement?.textContent')).toBe('Devices');
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { name: 'Devices' }).waitFor();
    });
  });

  it('refuses a write without the CSRF header, also with a valid session cookie, and a sign-in without it', async () => {
    await journey('csrf', async (page, context) => {
      // alice may ask for sessions: her dry run (a POST that stores nothing) is refused only for want of the header.
      await signIn(page, 'alice');
      const sid = (await consoleCookie(context))!.value;
      const dryRun = { deviceId: ids['WS-2'], type: 'remote-control', access: 'view' };
      const post = (headers: Record<string, string>) =>
        fetch(`${base}/v1/eligibility/check`, {
          method: 'POST',
          headers: { cookie: `rcflow_console=${sid}`, 'content-type': 'application/json', ...headers },
          body: JSON.stringify(dryRun),
        });
      // From the console's own page, a write without the header (what a form on another site would send).
      const bare = await page.evaluate(
        async (body) =>
          (await fetch('/v1/eligibility/check', { method: 'POST', headers: { 'content-type': 'application/json' }, body })).status,
        JSON.stringify(dryRun),
      );
      expect(bare).toBe(403);
      // A cross-site request that somehow carried the cookie: still refused without the header.
      const forged = await post({ origin: 'https://evil.example' });
      expect(forged.status).toBe(403);
      expect(((await forged.json()) as { error: { message: string } }).error.message).toMatch(/X-Requested-With: rcflow-console/);
      // With it, the same request is authorized and answered.
      const allowed = await post({ 'x-requested-with': 'rcflow-console' });
      expect(allowed.status).toBe(200);
      expect(((await allowed.json()) as { checks: unknown[] }).checks).toHaveLength(10);
      // Reads need no header; the session stands for alice.
      expect((await fetch(`${base}/v1/sessions/${ids.aliceSession}`, { headers: { cookie: `rcflow_console=${sid}` } })).status).toBe(200);
      // Login CSRF: no sign-in without the header.
      const login = await fetch(`${base}/console/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ apiKey: keys.audrey }),
      });
      expect(login.status).toBe(403);
      expect(login.headers.get('set-cookie')).toBeNull();
    });
  });

  it('ends every console session of a revoked key at once', async () => {
    await principal('rita', 'read_only_auditor', null);
    await journey('revoked', async (page, context) => {
      await signIn(page, 'rita');
      const sid = (await consoleCookie(context))!.value;
      const asRita = () => fetch(`${base}/v1/sessions`, { headers: { cookie: `rcflow_console=${sid}` } });
      expect((await asRita()).status).toBe(200);
      const keyId = keys.rita.slice(4, 40);
      expect((await admin.req('DELETE', `/v1/api-keys/${keyId}`)).status).toBeLessThan(300);
      expect((await asRita()).status).toBe(401);
    });
  });

  it('limits sign-in attempts per address (last: it spends the budget)', async () => {
    const attempt = () =>
      fetch(`${base}/console/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-requested-with': 'rcflow-console' },
        body: JSON.stringify({ apiKey: 'rcf_00000000-0000-4000-8000-000000000000.wrong' }),
      });
    // Twice the budget: however much of the current window earlier tests used, one window runs out.
    const statuses: number[] = [];
    let limited: Response | undefined;
    for (let i = 0; i < 2 * (SIGNIN_BUDGET + 1) && !limited; i++) {
      const r = await attempt();
      statuses.push(r.status);
      if (r.status === 429) limited = r;
    }
    expect(limited?.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(new Set(statuses.slice(0, -1))).toEqual(new Set([401]));
  });
});
