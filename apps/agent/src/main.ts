import * as os from 'node:os';
import { AgentClient } from './agent-client';
import { AGENT_USAGE, parseAgentArgs, type AgentOptions } from './agent-options';
import { UsageError } from './cli-args';
import { PolicyConsentProvider, PromptConsentProvider, type ConsentProvider } from './consent-providers';
import { DeviceAgent } from './device-agent';
import { EnrolmentError, enrolWithRetry } from './enrolment';
import { streamLogger, type Logger } from './logger';
import { MachinePresence } from './presence';
import { FileStateStore, type Enrolment, type StoredNotice } from './state-store';
import { LineConsole } from './terminal-console';

const EXIT_FAILED = 1;
const EXIT_REFUSED = 2;
const EXIT_USAGE = 64;

function fail(message: string, code: number): never {
  process.stderr.write(`rcflow-agent: ${message}\n`);
  process.exit(code);
}

function currentUserName(): string | null {
  try {
    return os.userInfo().username;
  } catch {
    return null;
  }
}

async function ensureEnrolled(
  o: AgentOptions,
  store: FileStateStore,
  machine: MachinePresence,
  log: Logger,
  stopping: () => boolean,
): Promise<Enrolment> {
  const existing = store.enrolment();
  if (existing) {
    if (o.enrolToken) log.info(`already enrolled as ${existing.deviceId}; the enrolment token is not needed and was not used`);
    if (o.hostnameFromFlag && o.hostname !== existing.hostname) {
      log.warn(`this agent is enrolled as host ${existing.hostname}; --hostname ${o.hostname} only applies to a new enrolment`);
    }
    if (existing.server !== o.server) log.warn(`enrolled with ${existing.server}, now connecting to ${o.server}`);
    return existing;
  }
  if (!o.enrolToken) {
    store.unlock();
    fail(`this agent is not enrolled yet (no credential in ${o.stateDir}); pass --enrol rce_… with an enrolment token`, EXIT_USAGE);
  }
  log.info(`enrolling ${o.hostname} with ${o.server}`);
  const facts = await machine.read();
  const presence = { ...facts, appliedSettingsHash: store.appliedSettingsHash() };
  try {
    const answer = await enrolWithRetry(o.server, { token: o.enrolToken, hostname: o.hostname, presence }, { log, shouldStop: stopping });
    const enrolment: Enrolment = { ...answer, hostname: o.hostname, server: o.server, enrolledAt: new Date().toISOString() };
    store.saveEnrolment(enrolment);
    log.info(`agent enrolled as ${enrolment.deviceId}`);
    return enrolment;
  } catch (err) {
    if (stopping()) process.exit(0);
    store.unlock();
    const refused = err instanceof EnrolmentError && err.permanent;
    fail((err as Error).message, refused ? EXIT_REFUSED : EXIT_FAILED);
  }
}

function noticeLine(n: StoredNotice): string {
  return `${n.noticeId.slice(0, 8)}  ${n.windowStart} .. ${n.windowEnd}  ${n.viewer} ${n.sessionType} (${n.access})  ${n.approval}`;
}

async function main(argv: string[]): Promise<void> {
  let parsed: ReturnType<typeof parseAgentArgs>;
  try {
    parsed = parseAgentArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) fail(`${err.message}\nRun with --help to see the options.`, EXIT_USAGE);
    throw err;
  }
  if (parsed.help) {
    process.stdout.write(AGENT_USAGE);
    return;
  }
  const o = parsed.options;
  const log = streamLogger(process.stderr);

  let store: FileStateStore;
  try {
    store = new FileStateStore(o.stateDir);
    store.lock();
  } catch (err) {
    fail((err as Error).message, EXIT_FAILED);
  }

  let stopping = false;
  let client: AgentClient | null = null;
  let lineConsole: LineConsole | null = null;
  let deviceAgent: DeviceAgent | null = null;
  /**
   * Ctrl-C (SIGINT) is the person at the terminal quitting: an open consent prompt is answered no
   * in their name and the active sessions end (by 'agent', with the reason). SIGTERM (a service
   * manager) also answers an open prompt no, but keeps the sessions for the next start.
   */
  const shutdown = (signal: 'SIGINT' | 'SIGTERM') => {
    if (stopping) return;
    stopping = true;
    const reason = `agent stopped (${signal === 'SIGINT' ? 'Ctrl-C' : signal})`;
    log.info(`${signal} received; stopping`);
    const interactive = signal === 'SIGINT';
    const answered = (
      deviceAgent?.stop({ reason, answeredBy: interactive ? (o.user ?? currentUserName()) : null, endSessions: interactive }) ??
      Promise.resolve(0)
    ).catch((err: unknown) => log.error(`could not end the sessions cleanly: ${(err as Error).message}`));
    void answered
      .then(() => {
        lineConsole?.close(`(${reason}: answered no)`);
        return client?.stop(reason);
      })
      .finally(() => {
        store.unlock();
        log.info('agent stopped');
        process.exit(0);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  const machine = new MachinePresence({
    osFamily: o.osFamily,
    osBuild: o.osBuild,
    agentVersion: o.agentVersion,
    fqdn: o.fqdn,
    domain: o.domain,
    user: o.user,
    locked: o.locked,
    localAdministrators: o.localAdministrators,
  });
  const enrolment = await ensureEnrolled(o, store, machine, log, () => stopping);
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- set by the signal handler during the await
  if (stopping) return;

  // The terminal is read when someone is there to type, or when prompting is the configured way
  // to ask (a test can drive it through a pipe).
  if (o.consent === 'prompt' || o.preapprovalFromFlag || process.stdin.isTTY) lineConsole = new LineConsole(process.stdin, process.stdout);
  const consent: ConsentProvider =
    o.consent === 'prompt' ? new PromptConsentProvider(lineConsole!, currentUserName) : new PolicyConsentProvider(o.consent);

  const agent = (deviceAgent = new DeviceAgent({
    store,
    consent,
    facts: () => machine.read(),
    viewerEndpoint: { host: o.viewerHost, port: o.viewerPort },
    rejectSettings: o.rejectSettings,
    log,
    preapproval: { answer: o.preapproval },
    whoAnswers: () => o.user ?? currentUserName(),
  }));
  if (lineConsole) {
    const terminal = lineConsole;
    // Ctrl-C read from a raw terminal: the same as the signal, on the first press.
    terminal.onInterrupt = () => shutdown('SIGINT');
    terminal.onLine = (line) => {
      const [word = '', arg] = line.trim().toLowerCase().split(/\s+/);
      const decisions = { approve: 'granted', deny: 'denied', revoke: 'revoked' } as const;
      if (word === 'end') agent.endSessionsByUser('ended by the local user');
      else if (word === 'sessions') terminal.print(agent.activeSessionIds().join('\n') || 'no active session');
      else if (word === 'notices') terminal.print(agent.openNotices().map(noticeLine).join('\n') || 'no notice');
      else if (word in decisions) {
        const answered = agent.answerNotices(arg ?? null, decisions[word as keyof typeof decisions], o.user ?? currentUserName());
        terminal.print(answered.length ? answered.map(noticeLine).join('\n') : 'no notice to answer that way');
      } else if (word !== '')
        terminal.print(
          'commands: end (end the active sessions), sessions (list them), notices (sessions announced ahead), approve|deny|revoke [ID]',
        );
    };
  }
  if (process.platform !== 'win32') process.on('SIGUSR2', () => agent.endSessionsByUser('ended by the local user (SIGUSR2)'));

  client = new AgentClient({
    server: o.server,
    credential: enrolment.credential,
    agent,
    log,
    onFatal: (message) => {
      log.error(
        `${message}. The device may have been revoked or deleted; to enrol again, remove ${o.stateDir}/enrolment.json and start with --enrol and a new token`,
      );
      store.unlock();
      process.exit(EXIT_REFUSED);
    },
  });
  log.info(`agent ${enrolment.hostname} (${enrolment.deviceId}) connecting to ${o.server}; consent ${o.consent}, state in ${o.stateDir}`);
  client.start();
}

process.on('unhandledRejection', (err) => {
  process.stderr.write(`rcflow-agent: unexpected failure: ${(err as Error | null | undefined)?.stack ?? String(err)}\n`);
  process.exit(EXIT_FAILED);
});

main(process.argv.slice(2)).catch((err: unknown) => fail(`failed: ${(err as Error).message}`, EXIT_FAILED));
