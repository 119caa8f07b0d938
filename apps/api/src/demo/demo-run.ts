import type { DataSource } from 'typeorm';
import { DemoWorld, keepDemoDevicesPresent, seedDemo } from './demo-seed';

/** Seeds the demo world before the API listens. */
export async function prepareDemo(ds: DataSource, key: string): Promise<DemoWorld> {
  const world = await seedDemo(ds, key);
  keepDemoDevicesPresent(ds, world);
  return world;
}

async function call(base: string, key: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/**
 * Asks for three sessions through the real API, as an operator, a stranger and a ticket system
 * would, waits for the workers to decide and prints where to look.
 */
export async function runDemo(base: string, world: DemoWorld, print: (line: string) => void): Promise<void> {
  const asked = [
    { who: 'alice (HELPDESK) controls WS-0001, user present', key: world.keys.alice, body: { deviceId: world.devices.attended, type: 'remote-control', access: 'full', reason: 'printer driver' } },
    { who: 'bob (not a permitted viewer) asks for WS-0001', key: world.keys.bob, body: { deviceId: world.devices.attended, type: 'remote-control', access: 'view' } },
    { who: 'helpdesk-bot for alice on KIOSK-01 (nobody logged on)', key: world.keys.helpdeskBot, body: { deviceId: world.devices.kiosk, viewerId: world.principals.alice, type: 'remote-control', access: 'full', ticketRef: 'INC0012345' } },
  ];
  const ids: { who: string; id: string; key: string }[] = [];
  for (const a of asked) {
    const r = await call(base, a.key, 'POST', '/v1/sessions', a.body);
    ids.push({ who: a.who, id: String(r.body.id), key: a.key });
  }
  const terminalOrActive = new Set(['active', 'ended', 'rejected', 'denied', 'consent_timeout', 'failed', 'cancelled', 'expired', 'interrupted']);
  const deadline = Date.now() + 15_000;
  const results: { who: string; id: string; state: string; why: string }[] = [];
  for (const s of ids) {
    let state = 'requested';
    let why = '';
    while (Date.now() < deadline) {
      const r = await call(base, world.keys.admin, 'GET', `/v1/sessions/${s.id}`);
      state = String(r.body.state);
      if (terminalOrActive.has(state)) {
        const d = r.body.decision as { checks?: { passed: boolean; detail: string }[] } | null;
        why = d?.checks?.filter((c) => !c.passed).map((c) => c.detail).join('; ') ?? '';
        break;
      }
      await new Promise((r2) => setTimeout(r2, 200));
    }
    results.push({ who: s.who, id: s.id, state, why });
  }
  print('');
  print('rcflow demo is running (embedded PostgreSQL, workers in this process, loopback agents).');
  print(`  API docs:     ${base}/docs`);
  print('  Demo sessions:');
  for (const r of results) print(`    ${r.state.padEnd(10)} ${r.who}\n               ${base}/v1/sessions/${r.id}${r.why ? `\n               why: ${r.why}` : ''}`);
  print('  API keys (shown once, also valid after a restart until revoked):');
  print(`    admin        ${world.keys.admin}`);
  print(`    alice        ${world.keys.alice}`);
  print(`    helpdesk-bot ${world.keys.helpdeskBot}`);
  print('  Try:');
  print(`    curl -s -H "Authorization: Bearer ${world.keys.admin}" ${base}/v1/audit/verify`);
  print(`    curl -s -H "Authorization: Bearer ${world.keys.admin}" "${base}/v1/audit?limit=20"`);
  print(`    curl -s -H "Authorization: Bearer ${world.keys.admin}" ${base}/v1/sessions/${results[1]?.id}/decision`);
  print('  Stop with Ctrl-C.');
}
