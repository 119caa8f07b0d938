import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ApiClient, ApiError, ConnectionError, withQuery } from './api-client';
import type { Accepted, AuditItem, Decision, Page, Session, SessionDetail, Verification, WhoAmI } from './api-types';
import { ConfigError, configPath, readConfig, removeConfig, writeConfig } from './config';
import type { Io } from './context';
import { EXIT_CODES_HELP, ExitCode } from './exit-codes';
import { clock, dateTime, oneLine, shortId, table } from './format';
import {
  type DeviceRef,
  type PrincipalRef,
  isApiKey,
  parseAccess,
  parseAction,
  parseDeviceRef,
  parseDuration,
  parseLimit,
  parsePrincipalRef,
  parseSessionType,
  parseSince,
  parseState,
  parseText,
  parseTypes,
  parseUrl,
  parseUuid,
} from './input';
import { followStream, type SseMessage } from './sse';
import { type StateStep, waitForOutcome } from './session-wait';

/** The address used when neither --url, RCFLOW_URL nor a login names one. */
export const DEFAULT_URL = 'http://localhost:3000';
/** Exit code of a wait stopped by Ctrl-C (128 + SIGINT), as shells report it. */
export const INTERRUPTED = 130;

/** A mistake of the user's that the API never saw: one line, exit 1. */
export class UsageError extends Error {}

interface GlobalOpts {
  url?: string;
  key?: string;
}

interface Connection {
  url: string;
  key: string;
  client: ApiClient;
}

const ENV_HELP = `Environment:
  RCFLOW_URL       the API's address (else the one rcctl login stored, else ${DEFAULT_URL})
  RCFLOW_API_KEY   the API key (else the one rcctl login stored)
  XDG_CONFIG_HOME  where rcctl login keeps rcflow/config.json (default ~/.config), mode 0600`;

/** The URL and key a command uses: --url/--key, else RCFLOW_URL/RCFLOW_API_KEY, else the login's config. */
function resolveConnection(io: Io, g: GlobalOpts, needKey: boolean): { url: string; key: string | null } {
  const flagOrEnv = (g.url ?? io.env.RCFLOW_URL) !== undefined && (g.key ?? io.env.RCFLOW_API_KEY) !== undefined;
  // Given everything on the command line or in the environment, a broken config file does not matter.
  const stored = flagOrEnv ? null : readConfig(configPath(io.env), (l) => io.err(`rcctl: warning: ${l}`));
  const rawUrl = g.url ?? io.env.RCFLOW_URL ?? stored?.url ?? DEFAULT_URL;
  let url: string;
  try {
    url = parseUrl(rawUrl);
  } catch (err) {
    throw new UsageError(`${g.url ? '--url' : io.env.RCFLOW_URL ? 'RCFLOW_URL' : 'the stored url'}: ${(err as Error).message}`);
  }
  const key = g.key ?? io.env.RCFLOW_API_KEY ?? stored?.key ?? null;
  if (key !== null && !isApiKey(key.trim())) {
    // The value is never echoed: a mistyped key is still mostly a secret.
    throw new UsageError(
      `${g.key ? '--key' : io.env.RCFLOW_API_KEY ? 'RCFLOW_API_KEY' : 'the stored key'} is not an rcflow API key (rcf_<id>.<secret>)`,
    );
  }
  if (needKey && key === null) throw new UsageError('not logged in: run rcctl login --url <url> (or set RCFLOW_API_KEY, or pass --key)');
  return { url, key: key?.trim() ?? null };
}

function connect(io: Io, cmd: Command): Connection {
  const { url, key } = resolveConnection(io, cmd.optsWithGlobals<GlobalOpts>(), true);
  return { url, key: key!, client: new ApiClient(url, key, io.fetch) };
}

async function resolveDevice(client: ApiClient, ref: DeviceRef): Promise<string> {
  if ('id' in ref) return ref.id;
  let page: Page<{ id: string; hostname: string }>;
  try {
    page = await client.get('/v1/devices', { hostname: ref.hostname, limit: 100 });
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) {
      throw new UsageError(`finding the device "${ref.hostname}" by name needs the permission admin.read; pass the device's id instead`);
    }
    throw err;
  }
  const found = page.items.find((d) => d.hostname.toLowerCase() === ref.hostname.toLowerCase());
  if (!found) throw new UsageError(`no device named "${ref.hostname}" in your scope`);
  return found.id;
}

async function resolvePrincipal(client: ApiClient, ref: PrincipalRef): Promise<string> {
  if ('id' in ref) return ref.id;
  let page: Page<{ id: string; name: string }>;
  try {
    page = await client.get('/v1/principals', { name: ref.name, limit: 100 });
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) {
      throw new UsageError(`finding the principal "${ref.name}" by name needs the permission admin.read; pass the principal's id instead`);
    }
    throw err;
  }
  const found = page.items.find((p) => p.name.toLowerCase() === ref.name.toLowerCase());
  if (!found) throw new UsageError(`no principal named "${ref.name}"`);
  return found.id;
}

/** The URL of the last login, if its file is readable at all (login is how a broken file gets replaced). */
function storedUrl(path: string): string | undefined {
  try {
    return readConfig(path, () => undefined)?.url;
  } catch {
    return undefined;
  }
}

/** One line per audit event, for watch and audit tail. */
export function eventLine(e: AuditItem): string {
  const parts = [clock(e.occurredAt), e.action.padEnd(26)];
  if (e.sessionId) parts.push(`session ${shortId(e.sessionId)}`);
  if (e.deviceId) parts.push(`device ${shortId(e.deviceId)}`);
  if (e.ticketRef) parts.push(`ticket ${e.ticketRef}`);
  const by = e.actor.kind === 'principal' ? `by ${shortId(e.actor.id)}` : `by ${e.actor.kind}`;
  parts.push(by);
  if (e.reason) parts.push(`— ${oneLine(e.reason)}`);
  return parts.join('  ');
}

function stepLine(s: StateStep): string {
  return `${clock(s.at)}  ${s.state}${s.reason ? `  — ${oneLine(s.reason)}` : ''}`;
}

function decisionLines(d: Decision): string[] {
  const lines = [...d.checks]
    .sort((a, b) => a.number - b.number)
    .map((c) => `  ${c.passed ? 'ok  ' : 'FAIL'}  ${String(c.number).padStart(2)} ${c.id.padEnd(20)} ${oneLine(c.detail)}`);
  lines.push(`  consent: ${d.consentRule}; evaluated ${dateTime(d.evaluatedAt)}`);
  return lines;
}

const parseMessage = (m: SseMessage): AuditItem | null => {
  if (m.data === '') return null;
  try {
    return JSON.parse(m.data) as AuditItem;
  } catch {
    return null;
  }
};

/** Prints an event stream until Ctrl-C, saying on standard error when the connection drops and comes back. */
async function follow(io: Io, conn: Connection, path: string, json: boolean, lastEventId: string | null, keep: (e: AuditItem) => boolean) {
  let lost = false;
  await followStream({
    baseUrl: conn.url,
    headers: conn.client.authHeaders(),
    fetchImpl: conn.client.fetchImpl,
    path,
    lastEventId,
    signal: io.signal,
    sleep: io.sleep,
    onStatus: (s) => {
      if (s.kind === 'lost') {
        lost = true;
        io.err(`rcctl: event stream lost (${s.reason}); reconnecting in ${Math.ceil(s.retryInMs / 1000)} s`);
      } else if (lost) {
        lost = false;
        io.err('rcctl: event stream back; resumed after the last event shown');
      }
    },
    onMessage: (m) => {
      const e = parseMessage(m);
      if (!e) return;
      if (!keep(e)) return;
      io.out(json ? JSON.stringify(e) : eventLine(e));
    },
  });
}

/** POST with one Idempotency-Key for every attempt: a retry after a dropped connection or a 503 cannot make a second session. */
async function postIdempotent<T>(io: Io, client: ApiClient, path: string, body: unknown, key: string): Promise<T> {
  const delays = [500, 1500];
  for (let attempt = 0; ; attempt++) {
    try {
      return await client.post<T>(path, body, { 'idempotency-key': key });
    } catch (err) {
      const transient = err instanceof ConnectionError || (err instanceof ApiError && (err.status === 503 || err.status === 502));
      const delay = delays[attempt];
      if (!transient || delay === undefined || io.signal.aborted) throw err;
      io.err(`rcctl: ${err instanceof ApiError ? err.describe() : err.message}; retrying with the same Idempotency-Key`);
      await (io.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms))))(delay, io.signal);
    }
  }
}

/** The whole command line; `state.code` receives the exit code of the command that ran. */
export function buildProgram(io: Io, state: { code: number }): Command {
  const program = new Command('rcctl')
    .description("rcflow's operator CLI: request, watch and explain remote sessions; read and verify the audit trail")
    .option('--url <url>', `the API's address (env RCFLOW_URL; default: the login's, else ${DEFAULT_URL})`)
    .option('--key <key>', "the API key (env RCFLOW_API_KEY; default: the login's). Prefer login: a key on the command line shows in ps")
    .showHelpAfterError('(rcctl --help for usage)')
    .configureHelp({ showGlobalOptions: true })
    .addHelpText('after', `\n${EXIT_CODES_HELP}\n\n${ENV_HELP}`)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s.replace(/\n$/, '')),
      writeErr: (s) => io.err(s.replace(/\n$/, '')),
    });

  const command = (name: string, description: string) =>
    program.command(name).description(description).option('--json', 'print JSON (one object, or one per line for streams) for scripts');

  // ---------------------------------------------------------------------------------------------
  // login, logout, whoami

  command('login', 'check an API key against rcflow and keep it (with the URL) in a file only you can read')
    .addHelpText(
      'after',
      '\nThe key comes from --key, else RCFLOW_API_KEY, else standard input: typed at a prompt without echo, or piped\n' +
        '(echo "$KEY" | rcctl login --url …). It is checked with the API, then written to ' +
        '$XDG_CONFIG_HOME/rcflow/config.json\n(default ~/.config/rcflow/config.json) with mode 0600 in a 0700 directory. rcctl never prints it.',
    )
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      const path = configPath(io.env);
      let url: string;
      try {
        url = parseUrl(g.url ?? io.env.RCFLOW_URL ?? storedUrl(path) ?? DEFAULT_URL);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      const key = (g.key ?? io.env.RCFLOW_API_KEY ?? (await io.readSecret(`API key for ${url}: `))).trim();
      if (key === '') throw new UsageError('no API key given');
      if (!isApiKey(key)) throw new UsageError('that is not an rcflow API key (rcf_<id>.<secret>)');
      const me = await new ApiClient(url, key, io.fetch).get<WhoAmI>('/v1/whoami');
      writeConfig(path, { url, key });
      if (opts.json) io.out(JSON.stringify({ url, principal: me.principal, grants: me.grants, config: path }));
      else io.out(`Logged in to ${url} as ${me.principal.name} (${me.principal.kind}); key kept in ${path} (mode 0600)`);
    });

  command('logout', 'forget the stored URL and key').action((opts: { json?: boolean }) => {
    const path = configPath(io.env);
    const removed = removeConfig(path);
    if (opts.json) io.out(JSON.stringify({ removed, config: path }));
    else io.out(removed ? `Logged out: removed ${path}` : `Not logged in (no ${path})`);
  });

  command('whoami', 'who the key in use belongs to, and its roles').action(async (opts: { json?: boolean }, cmd: Command) => {
    const conn = connect(io, cmd);
    const me = await conn.client.get<WhoAmI>('/v1/whoami');
    if (opts.json) return io.out(JSON.stringify({ url: conn.url, principal: me.principal, groups: me.groups, grants: me.grants }));
    io.out(`${me.principal.name} (${me.principal.kind}, ${me.principal.id}) at ${conn.url}`);
    if (me.groups.length) io.out(`groups: ${me.groups.join(', ')}`);
    for (const gr of me.grants) {
      io.out(`role ${gr.role} over ${gr.collectionIds === null ? 'every collection' : `${gr.collectionIds.length} collection(s)`}`);
    }
  });

  // ---------------------------------------------------------------------------------------------
  // request

  command('request', 'request a remote session; with --wait, follow it live until it is active or refused')
    .requiredOption('--device <id|name>', 'the device: its id, or its host name (a name needs admin.read)', parseDeviceRef)
    .option('--viewer <id|name>', 'who will view (default: you; someone else needs session.request_on_behalf)', parsePrincipalRef)
    .addOption(
      new Option('--type <type>', 'remote_control, remote_assistance or remote_desktop')
        .default('remote-control')
        .argParser(parseSessionType),
    )
    .addOption(new Option('--access <mode>', 'view or full').default('full').argParser(parseAccess))
    .option('--reason <text>', 'why (kept in the audit trail)', parseText('--reason', 1000))
    .option('--ticket <ref>', 'the helpdesk ticket this is for', parseText('--ticket', 200))
    .option('--idempotency-key <key>', "your own Idempotency-Key (default: a fresh one, reused by rcctl's own retries)", (v: string) => {
      if (!/^[A-Za-z0-9_.:-]{1,200}$/.test(v)) throw new InvalidArgumentError('It must be 1-200 letters, digits, _ . : -.');
      return v;
    })
    .option('--wait', 'follow the session through its states (live events) until active or refused; the exit code says which')
    .addOption(new Option('--timeout <duration>', 'how long --wait waits (90s, 2m, 1h)').default(120_000, '120s').argParser(parseDuration))
    .addHelpText('after', `\n${EXIT_CODES_HELP}`)
    .action(
      async (
        opts: {
          device: DeviceRef;
          viewer?: PrincipalRef;
          type: string;
          access: string;
          reason?: string;
          ticket?: string;
          idempotencyKey?: string;
          wait?: boolean;
          timeout: number;
          json?: boolean;
        },
        cmd: Command,
      ) => {
        const conn = connect(io, cmd);
        const deviceId = await resolveDevice(conn.client, opts.device);
        const viewerId = opts.viewer ? await resolvePrincipal(conn.client, opts.viewer) : undefined;
        const body = {
          deviceId,
          ...(viewerId && { viewerId }),
          type: opts.type,
          access: opts.access,
          ...(opts.reason && { reason: opts.reason }),
          ...(opts.ticket && { ticketRef: opts.ticket }),
        };
        const accepted = await postIdempotent<Accepted>(
          io,
          conn.client,
          '/v1/sessions',
          body,
          opts.idempotencyKey ?? io.newIdempotencyKey(),
        );
        const id = accepted.id;
        if (opts.json) io.out(JSON.stringify(opts.wait ? { kind: 'accepted', ...accepted } : accepted));
        if (!opts.wait) {
          if (!opts.json) io.out(`Session ${id} ${accepted.state}. Follow it with: rcctl show ${id}  (or request --wait)`);
          return;
        }
        if (!opts.json)
          io.out(`Session ${id} accepted; waiting up to ${Math.round(opts.timeout / 1000)} s (Ctrl-C stops waiting, not the session)`);
        const end = await waitForOutcome({
          client: conn.client,
          sessionId: id,
          timeoutMs: opts.timeout,
          signal: io.signal,
          sleep: io.sleep,
          onStep: (s) => io.out(opts.json ? JSON.stringify({ kind: 'state', ...s }) : stepLine(s)),
          onNote: (line) => io.err(`rcctl: ${line}`),
        });
        if (end.kind === 'outcome') {
          state.code = end.exitCode;
          if (opts.json) return io.out(JSON.stringify({ kind: 'outcome', sessionId: id, state: end.state, exitCode: end.exitCode }));
          if (end.state === 'active') return io.out(`Session ${id} is active. End it with: rcctl cancel ${id}`);
          if (end.state === 'denied') return io.out(`Session ${id} was denied by the user at the device.`);
          if (end.state !== 'rejected') return io.out(`Session ${id} ended ${end.state}. Details: rcctl show ${id}`);
          io.out(`Session ${id} was rejected by the eligibility checks:`);
          const d = await conn.client.get<Decision>(`/v1/sessions/${id}/decision`).catch(() => null);
          for (const c of d?.checks.filter((x) => !x.passed) ?? []) io.out(`  ${c.id}: ${oneLine(c.detail)}`);
          return io.out(`Every check: rcctl why ${id}`);
        }
        if (end.kind === 'timeout') {
          state.code = ExitCode.Timeout;
          if (opts.json) return io.out(JSON.stringify({ kind: 'timeout', sessionId: id, state: end.state, exitCode: ExitCode.Timeout }));
          return io.err(
            `rcctl: session ${id} is still ${end.state ?? 'requested'} after ${Math.round(opts.timeout / 1000)} s; it goes on (rcctl watch --session ${id})`,
          );
        }
        state.code = INTERRUPTED;
        io.err(`rcctl: stopped waiting; session ${id} goes on (${end.state ?? 'requested'}). rcctl cancel ${id} stops it`);
      },
    );

  // ---------------------------------------------------------------------------------------------
  // watch

  command('watch', 'print lifecycle events live until Ctrl-C (resumes after a dropped connection)')
    .option('--session <id>', 'one session', parseUuid)
    .option('--device <id|name>', 'one device', parseDeviceRef)
    .option('--viewer <id|name>', 'one viewer', parsePrincipalRef)
    .option('--ticket <ref>', 'one ticket reference', parseText('--ticket', 200))
    .option('--types <actions>', 'comma-separated action names or prefixes (session.active,session.)', parseTypes)
    .option('--after <eventId>', 'start after this audit event id (replays what followed it)', (v: string) => {
      if (!/^\d{1,19}$/.test(v)) throw new InvalidArgumentError('It must be an audit event id (digits).');
      return v;
    })
    .action(
      async (
        opts: {
          session?: string;
          device?: DeviceRef;
          viewer?: PrincipalRef;
          ticket?: string;
          types?: string;
          after?: string;
          json?: boolean;
        },
        cmd: Command,
      ) => {
        const conn = connect(io, cmd);
        const query = {
          sessionId: opts.session,
          deviceId: opts.device && (await resolveDevice(conn.client, opts.device)),
          viewerId: opts.viewer && (await resolvePrincipal(conn.client, opts.viewer)),
          ticketRef: opts.ticket,
          types: opts.types,
        };
        if (!opts.json) io.err('rcctl: watching events (Ctrl-C to stop)');
        await follow(io, conn, withQuery('/v1/events', query), opts.json === true, opts.after ?? null, () => true);
      },
    );

  // ---------------------------------------------------------------------------------------------
  // list, show, why, cancel

  command('list', 'sessions in your scope, newest first')
    .option('--state <state>', 'only sessions in this state', parseState)
    .option('--device <id|name>', 'only this device', parseDeviceRef)
    .option('--viewer <id|name>', 'only this viewer', parsePrincipalRef)
    .option('--since <when>', 'created at or after (date-time, or a duration ago: 1h)', parseSince(io.now))
    .option('--until <when>', 'created before (date-time, or a duration ago)', parseSince(io.now))
    .addOption(new Option('--limit <n>', 'how many (1-500)').default(20).argParser(parseLimit))
    .option('--cursor <cursor>', 'the next page (printed after a full page)')
    .action(
      async (
        opts: {
          state?: string;
          device?: DeviceRef;
          viewer?: PrincipalRef;
          since?: string;
          until?: string;
          limit: number;
          cursor?: string;
          json?: boolean;
        },
        cmd: Command,
      ) => {
        const conn = connect(io, cmd);
        const page = await conn.client.get<Page<Session>>('/v1/sessions', {
          state: opts.state,
          deviceId: opts.device && (await resolveDevice(conn.client, opts.device)),
          viewerId: opts.viewer && (await resolvePrincipal(conn.client, opts.viewer)),
          from: opts.since,
          to: opts.until,
          limit: opts.limit,
          cursor: opts.cursor,
        });
        if (opts.json) return io.out(JSON.stringify(page));
        if (page.items.length === 0) return io.out('No sessions.');
        io.out(
          table(
            ['SESSION', 'STATE', 'TYPE', 'ACCESS', 'DEVICE', 'VIEWER', 'CREATED', 'TICKET'],
            page.items.map((s) => [
              s.id,
              s.state,
              s.type,
              s.access,
              shortId(s.deviceId),
              shortId(s.viewerId),
              dateTime(s.createdAt),
              s.ticketRef ?? '',
            ]),
          ),
        );
        if (page.nextCursor) io.out(`More: rcctl list --cursor ${page.nextCursor}`);
      },
    );

  command('show', 'one session: its state, timeline and eligibility decision')
    .argument('<sessionId>', 'the session', parseUuid)
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      const conn = connect(io, cmd);
      const s = await conn.client.get<SessionDetail>(`/v1/sessions/${id}`);
      if (opts.json) return io.out(JSON.stringify(s));
      io.out(`Session ${s.id}: ${s.state} since ${dateTime(s.stateChangedAt)}`);
      io.out(`  ${s.type}, ${s.access} access; device ${s.deviceId}; viewer ${s.viewerId}; requested by ${s.requesterId}`);
      if (s.reason) io.out(`  reason: ${oneLine(s.reason)}`);
      if (s.ticketRef) io.out(`  ticket: ${s.ticketRef}`);
      if (s.failureCause) io.out(`  failure: ${oneLine(s.failureCause)}`);
      if (s.startedAt) io.out(`  started ${dateTime(s.startedAt)}${s.endedAt ? `, ended ${dateTime(s.endedAt)}` : ''}`);
      io.out('Timeline:');
      for (const t of s.timeline)
        io.out(`  ${clock(t.at)}  ${t.state.padEnd(17)} by ${t.actor.kind}${t.reason ? `  — ${oneLine(t.reason)}` : ''}`);
      if (s.decision) {
        io.out(`Decision: ${s.decision.eligible ? 'eligible' : 'NOT eligible'}`);
        for (const line of decisionLines(s.decision)) io.out(line);
      } else io.out('Decision: not evaluated yet');
    });

  command('why', 'the eligibility decision of a session: every check, passed or failed, and why')
    .argument('<sessionId>', 'the session', parseUuid)
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      const conn = connect(io, cmd);
      const d = await conn.client.get<Decision & { sessionId: string; state: string }>(`/v1/sessions/${id}/decision`);
      if (opts.json) return io.out(JSON.stringify(d));
      const failed = d.checks.filter((c) => !c.passed);
      io.out(
        `Session ${id} (${d.state}): ${d.eligible ? 'eligible, every check passed' : `NOT eligible: ${failed.map((c) => c.id).join(', ')} failed`}`,
      );
      for (const line of decisionLines(d)) io.out(line);
    });

  command('cancel', 'cancel a session that has not started, or end an active one')
    .argument('<sessionId>', 'the session', parseUuid)
    .option('--reason <text>', 'why (kept in the audit trail)', parseText('--reason', 1000))
    .action(async (id: string, opts: { reason?: string; json?: boolean }, cmd: Command) => {
      const conn = connect(io, cmd);
      const s = await conn.client.post<Session>(`/v1/sessions/${id}/cancel`, opts.reason ? { reason: opts.reason } : {});
      if (opts.json) return io.out(JSON.stringify(s));
      io.out(`Session ${id} ${s.state}.`);
    });

  // ---------------------------------------------------------------------------------------------
  // audit tail, verify

  const audit = program.command('audit').description('the audit trail');
  audit
    .command('tail')
    .description('the most recent audit events, oldest first; with --follow, then new ones live until Ctrl-C')
    .option('--json', 'one audit event per line (JSON)')
    .addOption(new Option('--limit <n>', 'how many recent events (1-500)').default(20).argParser(parseLimit))
    .option('--follow', 'keep printing new events (from the live event stream)')
    .option('--session <id>', 'one session', parseUuid)
    .option('--device <id|name>', 'one device', parseDeviceRef)
    .option('--viewer <id|name>', 'one viewer', parsePrincipalRef)
    .option('--actor <id>', 'one actor (principal id)', parseUuid)
    .option('--action <name>', 'one action (session.active)', parseAction)
    .option('--since <when>', 'at or after (date-time, or a duration ago: 1h)', parseSince(io.now))
    .action(
      async (
        opts: {
          json?: boolean;
          limit: number;
          follow?: boolean;
          session?: string;
          device?: DeviceRef;
          viewer?: PrincipalRef;
          actor?: string;
          action?: string;
          since?: string;
        },
        cmd: Command,
      ) => {
        const conn = connect(io, cmd);
        const deviceId = opts.device && (await resolveDevice(conn.client, opts.device));
        const viewerId = opts.viewer && (await resolvePrincipal(conn.client, opts.viewer));
        const page = await conn.client.get<Page<AuditItem>>('/v1/audit', {
          sessionId: opts.session,
          deviceId,
          viewerId,
          actorId: opts.actor,
          action: opts.action,
          from: opts.since,
          limit: opts.limit,
        });
        for (const e of [...page.items].reverse()) io.out(opts.json ? JSON.stringify(e) : eventLine(e));
        if (!opts.follow) return;
        if (!opts.json) io.err('rcctl: following new events (Ctrl-C to stop)');
        const query = { sessionId: opts.session, deviceId, viewerId, types: opts.action };
        // The event stream has no actor filter: that one is applied here.
        await follow(io, conn, withQuery('/v1/events', query), opts.json === true, page.items[0]?.id ?? null, (e) =>
          opts.actor ? e.actor.id === opts.actor : true,
        );
      },
    );

  command('verify', "verify the audit trail's tamper evidence (needs audit.read over every collection); exit 2 when it breaks").action(
    async (opts: { json?: boolean }, cmd: Command) => {
      const conn = connect(io, cmd);
      // Verification walks the whole trail: minutes on a large one.
      const v = await conn.client.get<Verification>('/v1/audit/verify', undefined, 30 * 60_000);
      state.code = v.ok ? ExitCode.Ok : ExitCode.Refused;
      if (opts.json) return io.out(JSON.stringify(v));
      const cp = v.checkpoint;
      const against = cp?.takenAt
        ? `; checkpoint of ${dateTime(cp.takenAt)} (${cp.source ?? '?'})`
        : cp
          ? `; ${cp.note ?? 'no checkpoint'}`
          : '';
      if (v.ok) return io.out(`The audit trail verifies: ${v.eventsChecked} events in ${v.streamsChecked} streams${against}.`);
      io.out(`The audit trail does NOT verify (${v.problems.length} problem(s) shown)${against}:`);
      for (const p of v.problems) io.out(`  ${p.stream}${p.seq === null ? '' : ` #${p.seq}`}: ${p.problem}`);
    },
  );

  return program;
}

/** Runs one command line (argv as process.argv gives it) and resolves to the exit code; never throws. */
export async function run(argv: string[], io: Io): Promise<number> {
  const state = { code: ExitCode.Ok as number };
  const program = buildProgram(io, state);
  try {
    await program.parseAsync(argv);
    return state.code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version are "errors" that exit 0; usage errors carry 1.
      return err.exitCode === 0 ? ExitCode.Ok : ExitCode.Error;
    }
    io.err(`rcctl: ${describeError(err)}`);
    return ExitCode.Error;
  }
}

/** One clear line for anything a command can fail with. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) return err.describe();
  if (err instanceof ConnectionError || err instanceof UsageError || err instanceof ConfigError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
