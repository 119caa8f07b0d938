import * as os from 'node:os';
import * as path from 'node:path';
import { parseCredential } from '@rcflow/agent-protocol';
import { parseCli, parseNumber, parseServerUrl, UsageError } from './cli-args';
import type { ConsentPolicy } from './consent-providers';
import { OS_FAMILIES, type OsFamily } from './presence';

export const AGENT_USAGE = `Usage: node dist/apps/agent/src/main.js --server URL [--enrol rce_…] [options]

The rcflow reference agent: enrols this machine once, holds its connection to rcflow, applies
remote-tools settings and answers session requests (consent, start, end).

Connection
  --server URL             rcflow API base URL, e.g. http://127.0.0.1:3000 (required)
  --enrol TOKEN            enrolment token rce_…; needed until the state directory holds a
                           credential, ignored afterwards. RCFLOW_AGENT_ENROL in the
                           environment works too and keeps the token out of ps.
  --state-dir DIR          credential, settings and answered commands
                           (default $RCFLOW_AGENT_STATE, else ~/.rcflow-agent)
Consent and sessions
  --consent MODE           prompt: ask at this terminal (default); accept; deny;
                           none: never answer, so every request times out
  --viewer-host HOST       where a viewer connects, reported in session_started (default: hostname)
  --viewer-port PORT       (default 5938)
  --reject-settings        answer every apply_settings with settings_rejected
  --preapproval MODE       a session booked ahead may ask to be agreed to ahead:
                           ask: leave it to the user at this terminal (default);
                           grant or deny: answer at once as the logged-on user
Presence
  --hostname NAME          host name to enrol under (default: this machine's, up to the first dot)
  --user NAME | --no-user  the logged-on user (default: the first console/tty user in \`who\`)
  --locked                 report the session as locked
  --os-family FAMILY       windows, linux or macos (default: from the platform)
  --os-build X             (default: the kernel release)
  --agent-version X        (default 1.0.0)
  --domain NAME            the domain the machine is joined to (sets domainJoined)
  --fqdn NAME              (default: hostname.domain when --domain is given)
  --local-admin NAME       a local administrator; repeat for several
  -h, --help               this text

While it runs, type "end" and Enter (or send SIGUSR2) to end the active sessions as the local
user; "notices" lists the sessions announced ahead, "approve [ID]" and "deny [ID]" answer their
asks, "revoke [ID]" takes an approval back (ID: the start of a notice id; none: every one).
Ctrl-C (SIGINT) stops the agent at once: an open consent prompt is answered no, the active
sessions end ("agent stopped (Ctrl-C)"), the connection closes and it exits 0. SIGTERM does the
same but keeps the active sessions for the next start.
Exit codes: 0 stopped, 1 failed, 2 credential or enrolment token refused, 64 usage error.
`;

export interface AgentOptions {
  server: string;
  /** `rce_…`, or null when not given; a secret, never logged. */
  enrolToken: string | null;
  stateDir: string;
  hostname: string;
  hostnameFromFlag: boolean;
  consent: ConsentPolicy | 'prompt';
  /** A name, null for nobody (--no-user), undefined to ask the machine. */
  user: string | null | undefined;
  locked: boolean;
  osFamily?: OsFamily;
  osBuild?: string;
  agentVersion: string;
  domain: string | null;
  fqdn: string | null;
  localAdministrators: string[];
  rejectSettings: boolean;
  preapproval: 'ask' | 'grant' | 'deny';
  /** --preapproval was given: the terminal is read for the notice commands even without a TTY. */
  preapprovalFromFlag: boolean;
  viewerHost: string;
  viewerPort: number;
}

export const HOSTNAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
const VERSION = /^\d+(\.\d+){0,3}([-+][0-9A-Za-z.-]+)?$/;
const CONSENT_MODES = ['prompt', 'accept', 'deny', 'none'] as const;
const PREAPPROVAL_MODES = ['ask', 'grant', 'deny'] as const;

export function parseAgentArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  machine: { hostname: () => string; homedir: () => string } = os,
): { help: true } | { help: false; options: AgentOptions } {
  const f = parseCli(argv, {
    server: { type: 'string' },
    enrol: { type: 'string' },
    'state-dir': { type: 'string' },
    hostname: { type: 'string' },
    consent: { type: 'string' },
    user: { type: 'string' },
    'no-user': { type: 'boolean' },
    locked: { type: 'boolean' },
    'os-family': { type: 'string' },
    'os-build': { type: 'string' },
    'agent-version': { type: 'string' },
    domain: { type: 'string' },
    fqdn: { type: 'string' },
    'local-admin': { type: 'string', multiple: true },
    'reject-settings': { type: 'boolean' },
    preapproval: { type: 'string' },
    'viewer-host': { type: 'string' },
    'viewer-port': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (f.help) return { help: true };

  const server = parseServerUrl(f.server);

  const enrolToken = f.enrol ?? env.RCFLOW_AGENT_ENROL ?? null;
  // The message names the expected shape, never the value: it may be a real token with a typo.
  if (enrolToken !== null && !parseCredential(enrolToken, 'rce')) {
    throw new UsageError('--enrol must be an enrolment token of the form rce_<id>.<secret>');
  }

  const stateDir = path.resolve(f['state-dir'] ?? env.RCFLOW_AGENT_STATE ?? path.join(machine.homedir(), '.rcflow-agent'));

  const hostname = f.hostname ?? machine.hostname().split('.')[0]!;
  if (!HOSTNAME.test(hostname)) {
    throw new UsageError(
      f.hostname !== undefined
        ? `--hostname must be 1-63 letters, digits, - or _, starting with a letter or digit; got ${JSON.stringify(hostname)}`
        : `this machine's host name ${JSON.stringify(hostname)} cannot be enrolled; pass --hostname`,
    );
  }

  const consent = f.consent ?? 'prompt';
  if (!(CONSENT_MODES as readonly string[]).includes(consent)) {
    throw new UsageError(`--consent must be one of ${CONSENT_MODES.join(', ')}; got ${JSON.stringify(consent)}`);
  }

  const preapproval = f.preapproval ?? 'ask';
  if (!(PREAPPROVAL_MODES as readonly string[]).includes(preapproval)) {
    throw new UsageError(`--preapproval must be one of ${PREAPPROVAL_MODES.join(', ')}; got ${JSON.stringify(preapproval)}`);
  }

  if (f.user !== undefined && f['no-user']) throw new UsageError('--user and --no-user cannot be combined');
  if (f.user !== undefined && (f.user.trim() === '' || f.user.length > 256)) throw new UsageError('--user must be 1-256 characters');
  const user = f['no-user'] ? null : f.user;

  const osFamily = f['os-family'];
  if (osFamily !== undefined && !(OS_FAMILIES as readonly string[]).includes(osFamily)) {
    throw new UsageError(`--os-family must be one of ${OS_FAMILIES.join(', ')}; got ${JSON.stringify(osFamily)}`);
  }
  if (f['os-build'] !== undefined && f['os-build'].length > 64) throw new UsageError('--os-build must be at most 64 characters');

  const agentVersion = f['agent-version'] ?? '1.0.0';
  if (!VERSION.test(agentVersion))
    throw new UsageError(`--agent-version must be a dotted version such as 1.2.3; got ${JSON.stringify(agentVersion)}`);

  const domain = f.domain ?? null;
  if (domain !== null && (domain === '' || domain.length > 253)) throw new UsageError('--domain must be 1-253 characters');
  const fqdn = f.fqdn ?? (domain ? `${hostname}.${domain}` : null);
  if (fqdn !== null && (fqdn === '' || fqdn.length > 253)) throw new UsageError('--fqdn must be 1-253 characters');

  const localAdministrators = f['local-admin'] ?? [];
  if (localAdministrators.length > 200) throw new UsageError('at most 200 --local-admin names');
  for (const admin of localAdministrators) {
    if (admin === '' || admin.length > 256) throw new UsageError('--local-admin names must be 1-256 characters');
  }

  const viewerHost = f['viewer-host'] ?? hostname;
  if (viewerHost === '' || viewerHost.length > 253) throw new UsageError('--viewer-host must be 1-253 characters');
  const viewerPort =
    f['viewer-port'] === undefined ? 5938 : parseNumber('--viewer-port', f['viewer-port'], { min: 1, max: 65535, integer: true });

  return {
    help: false,
    options: {
      server,
      enrolToken,
      stateDir,
      hostname,
      hostnameFromFlag: f.hostname !== undefined,
      consent: consent as AgentOptions['consent'],
      user,
      locked: f.locked ?? false,
      osFamily: osFamily as OsFamily | undefined,
      osBuild: f['os-build'],
      agentVersion,
      domain,
      fqdn,
      localAdministrators,
      rejectSettings: f['reject-settings'] ?? false,
      preapproval: preapproval as AgentOptions['preapproval'],
      preapprovalFromFlag: f.preapproval !== undefined,
      viewerHost,
      viewerPort,
    },
  };
}
