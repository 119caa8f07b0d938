import * as path from 'node:path';
import { parseCredential } from '@rcflow/agent-protocol';
import { HOSTNAME } from './agent-options';
import { parseCli, parseNumber, parseServerUrl, UsageError } from './cli-args';
import type { ConsentRatios } from './consent-providers';
import { OS_FAMILIES, type OsFamily } from './presence';

export const SIMULATOR_USAGE = `Usage: node dist/apps/agent/src/simulator.js --server URL --enrol rce_… --count N [options]

Runs N virtual rcflow agents in one process, one WebSocket each, with the reference agent's
command handling (each command id applied once, repeats answered with the first answer).

  --server URL               rcflow API base URL (required)
  --enrol TOKEN              enrolment token rce_… with at least N uses; needed for agents the state
                             file does not hold yet (or RCFLOW_AGENT_ENROL in the environment)
  --count N                  number of virtual agents (required)
  --prefix SIM               host names are PREFIX-1 … PREFIX-N (default SIM)
  --first-index I            number of the first host (default 1)
  --consent-accept R         share of prompts granted (default 0.8)
  --consent-deny R           share denied (default 0.1)
  --consent-timeout R        share never answered, so they time out (default 0.1)
  --preapproval MODE         answer to a session notice's ask for pre-approval: grant, deny, or ask
                             (default: nobody answers, the ask stays pending)
  --preapproval-revoke-after-ms MS
                             with grant: take the approval back this long after giving it
  --seed S                   seeds every per-command choice (default 1); same seed, same choices
  --latency-ms A-B           delay before each answer, uniform in A..B ms, or one value (default 0)
  --dropout-rate R           chance that a command arrival drops the agent's connection before it
                             answers; it reconnects and sends the answer then (default 0)
  --duplicate-ack-rate R     chance an answer frame is sent twice (default 0)
  --late-ack-rate R          chance the answers to a command are held past its timeout (default 0)
  --late-ack-ms MS           how far past: the consent timeout (start_session) plus MS (default 11000,
                             just over the server's default 10 s settings timeout)
  --state-file FILE          keeps the device credentials (mode 0600) so a restart reuses them;
                             without it they live in memory only
  --concurrency N            enrolments and connection handshakes at once (default 50)
  --os-family FAMILY         presence of every virtual agent (default windows)
  --domain NAME              virtual agents are joined to this domain
  --status-seconds S         status line interval (default 5)
  --verbose                  log every virtual agent's own lines, not only their errors
  -h, --help                 this text

Logs go to stderr. It prints "simulator ready: N agents connected" once all are connected, and a
"simulator status:" line every 5 s. SIGTERM or SIGINT closes every connection and exits 0.
`;

export interface SimulatorOptions {
  server: string;
  enrolToken: string | null;
  count: number;
  prefix: string;
  firstIndex: number;
  consent: ConsentRatios;
  preapproval: { answer: 'ask' | 'grant' | 'deny'; revokeAfterMs: number | null };
  seed: string;
  latencyMs: { min: number; max: number };
  dropoutRate: number;
  duplicateAckRate: number;
  lateAckRate: number;
  lateAckMs: number;
  stateFile: string | null;
  concurrency: number;
  osFamily: OsFamily;
  domain: string | null;
  statusSeconds: number;
  verbose: boolean;
}

const rate = (flag: string, raw: string | undefined, fallback: number) =>
  raw === undefined ? fallback : parseNumber(flag, raw, { min: 0, max: 1 });

export function parseLatency(raw: string | undefined): { min: number; max: number } {
  if (raw === undefined) return { min: 0, max: 0 };
  const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(raw);
  if (!m) throw new UsageError(`--latency-ms must be a number of milliseconds or a range A-B; got ${JSON.stringify(raw)}`);
  const min = Number(m[1]);
  const max = m[2] === undefined ? min : Number(m[2]);
  if (max < min || max > 600_000)
    throw new UsageError(`--latency-ms range must run from low to high, at most 600000; got ${JSON.stringify(raw)}`);
  return { min, max };
}

export function parseSimulatorArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): { help: true } | { help: false; options: SimulatorOptions } {
  const f = parseCli(argv, {
    server: { type: 'string' },
    enrol: { type: 'string' },
    count: { type: 'string' },
    prefix: { type: 'string' },
    'first-index': { type: 'string' },
    'consent-accept': { type: 'string' },
    'consent-deny': { type: 'string' },
    'consent-timeout': { type: 'string' },
    seed: { type: 'string' },
    preapproval: { type: 'string' },
    'preapproval-revoke-after-ms': { type: 'string' },
    'latency-ms': { type: 'string' },
    'dropout-rate': { type: 'string' },
    'duplicate-ack-rate': { type: 'string' },
    'late-ack-rate': { type: 'string' },
    'late-ack-ms': { type: 'string' },
    'state-file': { type: 'string' },
    concurrency: { type: 'string' },
    'os-family': { type: 'string' },
    domain: { type: 'string' },
    'status-seconds': { type: 'string' },
    verbose: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (f.help) return { help: true };
  const server = parseServerUrl(f.server);
  const enrolToken = f.enrol ?? env.RCFLOW_AGENT_ENROL ?? null;
  if (enrolToken !== null && !parseCredential(enrolToken, 'rce'))
    throw new UsageError('--enrol must be an enrolment token of the form rce_<id>.<secret>');
  if (f.count === undefined) throw new UsageError('--count is required');
  const count = parseNumber('--count', f.count, { min: 1, max: 1_000_000, integer: true });
  const firstIndex =
    f['first-index'] === undefined ? 1 : parseNumber('--first-index', f['first-index'], { min: 0, max: 1e9, integer: true });
  const prefix = f.prefix ?? 'SIM';
  if (!HOSTNAME.test(`${prefix}-${firstIndex + count - 1}`)) {
    throw new UsageError(
      `--prefix must be letters, digits, - or _ and leave room for the number in a 63-character host name; got ${JSON.stringify(prefix)}`,
    );
  }
  const consent = {
    accept: rate('--consent-accept', f['consent-accept'], 0.8),
    deny: rate('--consent-deny', f['consent-deny'], 0.1),
    timeout: rate('--consent-timeout', f['consent-timeout'], 0.1),
  };
  if (consent.accept + consent.deny + consent.timeout <= 0) throw new UsageError('the consent shares must not all be 0');
  const answer = f.preapproval ?? 'ask';
  if (!['ask', 'grant', 'deny'].includes(answer))
    throw new UsageError(`--preapproval must be grant, deny or ask; got ${JSON.stringify(answer)}`);
  const revoke = f['preapproval-revoke-after-ms'];
  if (revoke !== undefined && answer !== 'grant') throw new UsageError('--preapproval-revoke-after-ms needs --preapproval grant');
  const preapproval = {
    answer: answer as 'ask' | 'grant' | 'deny',
    revokeAfterMs:
      revoke === undefined ? null : parseNumber('--preapproval-revoke-after-ms', revoke, { min: 0, max: 86_400_000, integer: true }),
  };
  const osFamily = f['os-family'] ?? 'windows';
  if (!(OS_FAMILIES as readonly string[]).includes(osFamily)) throw new UsageError(`--os-family must be one of ${OS_FAMILIES.join(', ')}`);
  const domain = f.domain ?? null;
  if (domain !== null && (domain === '' || domain.length > 180)) throw new UsageError('--domain must be 1-180 characters');
  return {
    help: false,
    options: {
      server,
      enrolToken,
      count,
      prefix,
      firstIndex,
      consent,
      preapproval,
      seed: f.seed ?? '1',
      latencyMs: parseLatency(f['latency-ms']),
      dropoutRate: rate('--dropout-rate', f['dropout-rate'], 0),
      duplicateAckRate: rate('--duplicate-ack-rate', f['duplicate-ack-rate'], 0),
      lateAckRate: rate('--late-ack-rate', f['late-ack-rate'], 0),
      lateAckMs:
        f['late-ack-ms'] === undefined ? 11_000 : parseNumber('--late-ack-ms', f['late-ack-ms'], { min: 0, max: 3_600_000, integer: true }),
      stateFile: f['state-file'] === undefined ? null : path.resolve(f['state-file']),
      concurrency: f.concurrency === undefined ? 50 : parseNumber('--concurrency', f.concurrency, { min: 1, max: 10_000, integer: true }),
      osFamily: osFamily as OsFamily,
      domain,
      statusSeconds: f['status-seconds'] === undefined ? 5 : parseNumber('--status-seconds', f['status-seconds'], { min: 0.1, max: 3600 }),
      verbose: f.verbose ?? false,
    },
  };
}
