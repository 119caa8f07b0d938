import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { createEnrolmentToken } from '../admin/enrolment-admin.service';
import type { SessionTransitions } from '@rcflow/sessions';
import { Leftovers, endLeftoverSessions, revokeDemoTokens } from './demo-leftovers';
import { DemoWorld, seedDemo } from './demo-seed';
import { printLiveTransitions } from './demo-live';

export interface DemoSetup {
  world: DemoWorld;
  simulatorToken: string;
  demoPcToken: string;
  /** What this start ended or revoked of the runs before it. */
  leftovers: Leftovers;
}

/**
 * Seeds the demo world and the enrolment tokens for its agents, before the API listens. A restart
 * first ends the sessions the previous run left on the demo devices (so its banner is true again)
 * and revokes that run's keys and still-usable enrolment tokens.
 */
export async function prepareDemo(
  ds: DataSource,
  key: string,
  transitions: Pick<SessionTransitions, 'apply' | 'snapshot'>,
): Promise<DemoSetup> {
  const world = await seedDemo(ds, key);
  const sessions = await endLeftoverSessions(
    ds,
    transitions,
    { id: world.principals.admin, name: 'demo-admin' },
    Object.values(world.devices),
  );
  // WS-1..WS-3 are registered in their collection ahead of their agents: a token of that collection enrols them.
  const [member] = await ds.query<{ collection_id: string }[]>(
    'SELECT collection_id FROM collection_members WHERE device_id = $1 LIMIT 1',
    [world.devices.ws1],
  );
  const [tokens, simulator, demoPc] = await ds.transaction(async (manager) => {
    const ctx = { manager, auditKey: key, actorId: world.principals.admin };
    const collectionId = member?.collection_id ?? null;
    return [
      await revokeDemoTokens(ctx, { adminId: world.principals.admin, collectionId, demoPcId: world.devices.demoPc }),
      await createEnrolmentToken(ctx, { collectionId: member?.collection_id, maxUses: 3, expiresInSeconds: 3600 }),
      await createEnrolmentToken(ctx, { hostname: 'DEMO-PC', maxUses: 1, expiresInSeconds: 24 * 3600 }),
    ] as const;
  });
  return {
    world,
    simulatorToken: simulator.token,
    demoPcToken: demoPc.token,
    leftovers: { sessions, keys: world.revokedKeys, tokens },
  };
}

/** Starts the simulator playing WS-1..WS-3 (every user says yes after a short pause); it stops with this process. */
function startSimulator(base: string, token: string, stateFile: string): Promise<ChildProcess> {
  const script = join(__dirname, '..', '..', '..', 'agent', 'src', 'simulator.js');
  const child = spawn(
    process.execPath,
    [
      script,
      '--server',
      base,
      '--count',
      '3',
      '--prefix',
      'WS',
      '--consent-accept',
      '1',
      '--consent-deny',
      '0',
      '--consent-timeout',
      '0',
      '--latency-ms',
      '300',
      '--domain',
      'CONTOSO',
      '--state-file',
      stateFile,
      '--status-seconds',
      '3600',
    ],
    { env: { ...process.env, RCFLOW_AGENT_ENROL: token }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  process.once('exit', () => child.kill());
  return new Promise((resolve, reject) => {
    let out = '';
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('simulator ready')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`simulator exited (${code}): ${out.slice(-500)}`)));
  });
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
 * Starts simulated agents, asks for three sessions through the real API, as an operator, a
 * stranger and a ticket system would, waits for the workers to decide and prints where to look.
 */
export async function runDemo(base: string, setup: DemoSetup, stateDir: string, print: (line: string) => void): Promise<void> {
  const { world } = setup;
  await startSimulator(base, setup.simulatorToken, join(stateDir, 'demo-simulator.json'));
  const asked = [
    {
      who: 'alice (HELPDESK) controls WS-1; the simulated user says yes',
      key: world.keys.alice,
      body: { deviceId: world.devices.ws1, type: 'remote-control', access: 'full', reason: 'printer driver' },
    },
    {
      who: 'bob (not a permitted viewer) asks for WS-2',
      key: world.keys.bob,
      body: { deviceId: world.devices.ws2, type: 'remote-control', access: 'view' },
    },
    {
      who: 'helpdesk-bot for alice: remote assistance on WS-3',
      key: world.keys.helpdeskBot,
      body: {
        deviceId: world.devices.ws3,
        viewerId: world.principals.alice,
        type: 'remote-assistance',
        access: 'full',
        ticketRef: 'INC0012345',
      },
    },
  ];
  const ids: { who: string; id: string }[] = [];
  for (const a of asked) {
    const r = await call(base, a.key, 'POST', '/v1/sessions', a.body);
    ids.push({ who: a.who, id: String(r.body.id) });
  }
  const atRest = new Set(['active', 'ended', 'rejected', 'denied', 'consent_timeout', 'failed', 'cancelled', 'expired', 'interrupted']);
  const deadline = Date.now() + 20_000;
  const results: { who: string; id: string; state: string; why: string }[] = [];
  for (const s of ids) {
    let state = 'requested';
    let why = '';
    while (Date.now() < deadline) {
      const r = await call(base, world.keys.admin, 'GET', `/v1/sessions/${s.id}`);
      state = String(r.body.state);
      if (atRest.has(state)) {
        const d = r.body.decision as { checks?: { passed: boolean; detail: string }[] } | null;
        why =
          d?.checks
            ?.filter((c) => !c.passed)
            .map((c) => c.detail)
            .join('; ') ?? '';
        break;
      }
      await new Promise((r2) => setTimeout(r2, 200));
    }
    results.push({ ...s, state, why });
  }
  print('');
  print('rcflow demo is running: embedded PostgreSQL, API and workers in this process, 3 simulated agents.');
  print(`  API docs:   ${base}/docs`);
  print(`  Console:    ${base}/console   (sign in with the auditor key below; any key works, with its own role and scope)`);
  print('  Demo sessions:');
  for (const r of results)
    print(`    ${r.state.padEnd(10)} ${r.who}\n               ${base}/v1/sessions/${r.id}${r.why ? `\n               why: ${r.why}` : ''}`);
  const { leftovers } = setup;
  if (leftovers.sessions || leftovers.keys || leftovers.tokens)
    print(
      `  Restarted: ended ${leftovers.sessions} session(s) the previous run left open, revoked its ${leftovers.keys} API key(s) and ${leftovers.tokens} unused enrolment token(s).`,
    );
  print('  API keys (shown once; the next start of the demo revokes them and prints new ones):');
  print(`    admin        ${world.keys.admin}`);
  print(`    alice        ${world.keys.alice}`);
  print(`    helpdesk-bot ${world.keys.helpdeskBot}`);
  print(`    auditor      ${world.keys.auditor}   (read_only_auditor over everything)`);
  print(`    desk-auditor ${world.keys.deskAuditor}   (read_only_auditor over Helpdesk Desktops only; SRV-1 is outside)`);
  print('');
  print('  Your own agent: in a second terminal start the reference agent for DEMO-PC, then ask for a');
  print("  session and answer the consent prompt in the agent's terminal:");
  print(
    `    npm run agent -- --server ${base} --enrol ${setup.demoPcToken} --hostname DEMO-PC --state-dir .rcflow/agent-demo-pc --consent prompt --user "\${USER:-$(id -un)}"`,
  );
  print(`    echo ${world.keys.alice} | npm run -s rcctl -- login --url ${base}   # as alice`);
  print(`    npm run -s rcctl -- request --device ${world.devices.demoPc} --reason demo --wait`);
  print(`    npm run -s rcctl -- cancel <id>                                       # end it`);
  print(`    RCFLOW_API_KEY=${world.keys.admin} npm run -s rcctl -- audit tail --device ${world.devices.demoPc}   # its history`);
  print(`    RCFLOW_API_KEY=${world.keys.admin} npm run -s rcctl -- verify`);
  print('  Stop with Ctrl-C.');
  print('');
  print('  Live: every session transition from now on (the event stream, as `rcctl watch` shows it):');
  printLiveTransitions(base, world.keys.admin, world, print);
}
