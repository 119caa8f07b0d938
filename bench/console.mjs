// Benchmark 8: the web console's first page load (issue 12) in headless Chromium (Debian's, driven
// by playwright-core): from navigation to /console, signed in by its session cookie, to the sessions
// list rendered with its rows (the first `tr[data-session]` visible). BENCH_CONSOLE_SESSIONS sessions
// (default 100,000) are loaded by SQL first; BENCH_CONSOLE_LOADS loads (default 20, after 3 warm-ups)
// per repetition, each in a fresh browser context (no cache). CHROMIUM_PATH overrides /usr/bin/chromium.
import { existsSync } from 'node:fs';
import { Stack } from './lib/stack.mjs';
import { nowMs, percentiles, round } from './lib/stats.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

async function seed(stack, sessions) {
  const [{ id: root }] = await stack.q(`SELECT id FROM principals WHERE name = 'root'`);
  await stack.q(
    `INSERT INTO devices (id, hostname, os_family, os_build, agent_version, domain_joined, enrolled)
     SELECT gen_random_uuid(), 'CD-' || i, 'windows', '10.0.22631', '1.2.0', true, true FROM generate_series(1, 100) i`,
  );
  await stack.q(
    `INSERT INTO sessions (id, device_id, viewer_id, requester_id, type, access, reason, state, state_changed_at, version, created_at, updated_at)
     SELECT gen_random_uuid(), d.id, $1, $1, 'remote-control', 'full', 'bench', (ARRAY['ended','rejected','denied','cancelled'])[1 + g % 4],
            now() - make_interval(secs => g), 3, now() - make_interval(secs => g), now() - make_interval(secs => g)
       FROM generate_series(1, ${sessions}) g
       JOIN LATERAL (SELECT id FROM devices WHERE hostname = 'CD-' || (1 + g % 100)) d ON true`,
    [root],
  );
  await stack.q('ANALYZE');
}

/** The console's session cookie for `key`, as the sign-in form gets it. */
async function signIn(base, key) {
  const r = await fetch(`${base}/console/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-requested-with': 'rcflow-console' },
    body: JSON.stringify({ apiKey: key }),
  });
  if (r.status >= 300) throw new Error(`console sign-in: ${r.status} ${await r.text()}`);
  const cookie = /rcflow_console=([^;]+)/.exec(r.headers.get('set-cookie') ?? '')?.[1];
  if (!cookie) throw new Error('console sign-in set no cookie');
  return cookie;
}

export async function run(ctx) {
  const P = ctx.params;
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM} (scripts/services.sh ensure_chromium installs Debian's)`);
  const { chromium } = await import('playwright-core');
  const sessions = Number(process.env.BENCH_CONSOLE_SESSIONS ?? 100_000);
  const loads = Number(process.env.BENCH_CONSOLE_LOADS ?? (P.quick ? 5 : 20));
  const stack = new Stack('console', ctx, P.rcflowEnv);
  const reps = [];
  let browser;
  try {
    await stack.init();
    ctx.log(`  console: loading ${sessions} sessions`);
    await seed(stack, sessions);
    await stack.startApi();
    const base = stack.api.url;
    const cookie = await signIn(base, stack.adminKey);
    const { hostname } = new URL(base);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const load = async () => {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      try {
        await context.addCookies([
          { name: 'rcflow_console', value: cookie, domain: hostname, path: '/', httpOnly: true, sameSite: 'Strict' },
        ]);
        const page = await context.newPage();
        const t0 = nowMs();
        await page.goto(`${base}/console`);
        await page.locator('tr[data-session]').first().waitFor({ state: 'visible', timeout: 30_000 });
        return nowMs() - t0;
      } finally {
        await context.close();
      }
    };
    for (let i = 0; i < 3; i++) await load();
    for (let rep = 0; rep < P.reps; rep++) {
      const ms = [];
      for (let i = 0; i < loads; i++) ms.push(await load());
      const p = percentiles(ms);
      reps.push({ sessions, loads, p50: round(p.p50, 1), p95: round(p.p95, 1) });
      ctx.log(`  console rep ${rep + 1}: ${JSON.stringify(reps.at(-1))}`);
    }
    return { reps };
  } finally {
    await browser?.close().catch(() => undefined);
    await stack.stopProcs();
    await stack.destroy(ctx.redis);
  }
}
