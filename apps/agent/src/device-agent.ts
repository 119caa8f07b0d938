import { PROTOCOL_VERSION, type ParseResult, type Presence, type ServerMessage } from '@rcflow/agent-protocol';
import { settingsVersionHash } from '@rcflow/domain';
import { waitForTimeout, type ConsentAnswer, type ConsentProvider, type ConsentRequest } from './consent-providers';
import type { Logger } from './logger';
import type { MachineFacts } from './presence';
import type { AgentStateStore } from './state-store';
import {
  asInbound,
  type ApplySettingsCommand,
  type Command,
  type EndSessionCommand,
  type Outbound,
  type StartSessionCommand,
} from './protocol-types';

/** Where the agent's frames go; `cause` is the command a frame answers, null for unsolicited ones. */
export interface FrameSink {
  send(frame: Outbound, cause: Command | null): void;
}

export interface DeviceAgentOptions {
  store: AgentStateStore;
  consent: ConsentProvider;
  facts: () => MachineFacts | Promise<MachineFacts>;
  /** Reported in session_started: where a viewer would connect. */
  viewerEndpoint: { host: string; port: number };
  rejectSettings?: boolean;
  log: Logger;
  /** How long past a consent timeout the agent waits for a provider that ignores it. */
  consentGraceMs?: number;
}

const COMMAND_ID = /^[A-Za-z0-9:._-]{1,128}$/;
const v = PROTOCOL_VERSION;

/**
 * The per-device logic: answers the server's commands, applying each command id at most once,
 * and tracks active sessions. It knows nothing of sockets; the reference agent runs one, the
 * simulator thousands.
 */
export class DeviceAgent {
  private sink: FrameSink | null = null;
  /** Commands being worked on (a consent prompt can take a minute); a redelivery meanwhile is not run twice. */
  private readonly inFlight = new Set<string>();
  /** Open consent requests by session, so end_session can withdraw them. */
  private readonly pendingConsent = new Map<string, AbortController>();

  constructor(private readonly options: DeviceAgentOptions) {
    const restored = options.store.activeSessions();
    if (restored.length > 0) {
      options.log.info(`restored ${restored.length} active session(s): ${restored.map((s) => s.sessionId).join(', ')}`);
    }
  }

  attach(sink: FrameSink): void {
    this.sink = sink;
  }

  private send(frame: Outbound, cause: Command | null) {
    if (!this.sink) throw new Error('DeviceAgent has no sink attached');
    this.sink.send(frame, cause);
  }

  async presence(): Promise<Presence> {
    const facts = await this.options.facts();
    return { ...facts, appliedSettingsHash: this.options.store.appliedSettingsHash() };
  }

  /** The server knows the device under an id; keep it if it differs from the one enrolment gave. */
  welcomed(deviceId: string): void {
    const enrolment = this.options.store.enrolment();
    if (enrolment && enrolment.deviceId !== deviceId) {
      this.options.log.warn(`server knows this device as ${deviceId}, enrolment said ${enrolment.deviceId}; keeping the server's id`);
      this.options.store.saveEnrolment({ ...enrolment, deviceId });
    }
  }

  activeSessionIds(): string[] {
    return this.options.store.activeSessions().map((s) => s.sessionId);
  }

  /** Handles a frame that failed validation: logged and dropped, except settings the agent can refuse. */
  malformed(raw: string | Buffer, result: Extract<ParseResult<unknown>, { ok: false }>): void {
    this.options.log.warn(
      `ignored a ${result.code === 'bad_version' ? 'frame of another protocol version' : 'malformed frame'} from the server: ${result.error.slice(0, 500)}`,
    );
    if (result.code !== 'bad_frame') return;
    // An apply_settings whose settings fail the schema names its command: refusing it lets the
    // server fail the step now instead of waiting out its timeout.
    let value: { v?: unknown; type?: unknown; commandId?: unknown } | null;
    try {
      value = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8')) as typeof value;
    } catch {
      return;
    }
    if (value?.v !== PROTOCOL_VERSION || value.type !== 'apply_settings') return;
    if (typeof value.commandId !== 'string' || !COMMAND_ID.test(value.commandId)) return;
    const commandId = value.commandId;
    const earlier = this.options.store.answerOf(commandId);
    const frames: Outbound[] = earlier ?? [
      { v, type: 'settings_rejected', commandId, reason: `settings do not match the schema: ${result.error}`.slice(0, 1000) },
    ];
    if (!earlier) this.options.store.recordAnswer(commandId, 'apply_settings', frames);
    const cause = value as unknown as ApplySettingsCommand;
    for (const frame of frames) this.send(frame, cause);
  }

  /** Handles a validated server frame; resolves once a command is answered. */
  async handle(frame: ServerMessage): Promise<void> {
    const message = asInbound(frame);
    if (message.type === 'welcome') {
      this.welcomed(message.deviceId);
      return;
    }
    if (message.type === 'error') {
      this.options.log.warn(`server reported an error (${message.code}): ${message.message}`);
      return;
    }
    return this.command(message);
  }

  private async command(cmd: Command): Promise<void> {
    const { store, log } = this.options;
    const earlier = store.answerOf(cmd.commandId);
    if (earlier) {
      log.info(`${cmd.type} ${cmd.commandId} was answered before; sending the same answer again`);
      for (const frame of earlier) this.send(frame, cmd);
      return;
    }
    if (this.inFlight.has(cmd.commandId)) {
      log.info(`${cmd.type} ${cmd.commandId} is still being worked on; it will be answered once`);
      return;
    }
    this.inFlight.add(cmd.commandId);
    try {
      let frames: Outbound[];
      try {
        frames = await this.execute(cmd);
      } catch (err) {
        log.error(`could not carry out ${cmd.type} ${cmd.commandId}: ${(err as Error).message}`);
        // Not recorded: nothing was applied, so a redelivery may try again.
        if (cmd.type === 'apply_settings') {
          const reason = `the agent could not apply the settings: ${(err as Error).message}`.slice(0, 1000);
          this.send({ v, type: 'settings_rejected', commandId: cmd.commandId, reason }, cmd);
        }
        return;
      }
      try {
        store.recordAnswer(cmd.commandId, cmd.type, frames);
      } catch (err) {
        log.error(`could not persist the answer to ${cmd.commandId} (${(err as Error).message}); a redelivery would be carried out again`);
      }
      for (const frame of frames) this.send(frame, cmd);
    } finally {
      this.inFlight.delete(cmd.commandId);
    }
  }

  private execute(cmd: Command): Promise<Outbound[]> | Outbound[] {
    switch (cmd.type) {
      case 'apply_settings':
        return this.applySettings(cmd);
      case 'start_session':
        return this.startSession(cmd);
      case 'end_session':
        return this.endSession(cmd);
    }
  }

  private applySettings(cmd: ApplySettingsCommand): Outbound[] {
    const { log, store } = this.options;
    if (this.options.rejectSettings) {
      log.info(`rejected settings ${cmd.versionHash.slice(0, 12)} (command ${cmd.commandId}): configured to reject`);
      return [
        {
          v,
          type: 'settings_rejected',
          commandId: cmd.commandId,
          reason: 'this agent is configured to reject settings (--reject-settings)',
        },
      ];
    }
    // The server's hash is what presence reports back, so it is kept even if ours differs; a
    // difference means the two sides hash differently, worth a line but not a refusal.
    const ours = settingsVersionHash(cmd.settings);
    if (ours !== cmd.versionHash) {
      log.warn(`settings ${cmd.versionHash.slice(0, 12)} hash to ${ours.slice(0, 12)} here; keeping the server's version hash`);
    }
    store.saveSettings(cmd.settings, cmd.versionHash);
    log.info(
      `applied settings ${cmd.versionHash.slice(0, 12)} (command ${cmd.commandId}, remote control ${cmd.settings.enabled ? 'enabled' : 'disabled'})`,
    );
    return [{ v, type: 'settings_applied', commandId: cmd.commandId, versionHash: cmd.versionHash }];
  }

  private async startSession(cmd: StartSessionCommand): Promise<Outbound[]> {
    const { log, store } = this.options;
    const { rule, timeoutMs, onTimeout } = cmd.consent;
    let outcome: 'granted' | 'denied' | 'timed_out' | 'not_required';
    let answeredBy: string | null = null;
    let proceed: boolean;
    if (rule === 'prompt_user') {
      const facts = await this.options.facts();
      const withdraw = new AbortController();
      this.pendingConsent.set(cmd.sessionId, withdraw);
      log.info(
        `consent asked: ${cmd.viewer} wants ${cmd.sessionType} (${cmd.access}) of session ${cmd.sessionId}; ${Math.ceil(timeoutMs / 1000)} s to answer`,
      );
      let answer: ConsentAnswer & { failed?: boolean };
      try {
        answer = await this.askConsent({
          commandId: cmd.commandId,
          sessionId: cmd.sessionId,
          viewer: cmd.viewer,
          sessionType: cmd.sessionType,
          access: cmd.access,
          timeoutMs,
          loggedOnUser: facts.loggedOnUser,
          signal: withdraw.signal,
        });
      } finally {
        this.pendingConsent.delete(cmd.sessionId);
      }
      outcome = answer.outcome;
      answeredBy = answer.outcome === 'timed_out' ? null : answer.answeredBy;
      // A request the server withdrew (end_session) reports that nobody answered, and never
      // starts, whatever onTimeout says.
      const withdrawn = withdraw.signal.aborted;
      proceed = !withdrawn && !answer.failed && (outcome === 'granted' || (outcome === 'timed_out' && onTimeout === 'allow'));
      log.info(
        `consent answered: ${withdrawn ? 'withdrawn by the server, reported as timed_out' : outcome}${answeredBy ? ` by ${answeredBy}` : ''} for session ${cmd.sessionId}` +
          (outcome === 'timed_out' && proceed ? ' (policy allows on timeout)' : ''),
      );
    } else {
      outcome = 'not_required';
      proceed = true;
      log.info(`consent not required (${rule}) for session ${cmd.sessionId}`);
    }
    const frames: Outbound[] = [{ v, type: 'consent', commandId: cmd.commandId, sessionId: cmd.sessionId, outcome, answeredBy }];
    if (!proceed) {
      log.info(`session ${cmd.sessionId} not started`);
      return frames;
    }
    store.saveActiveSession({
      sessionId: cmd.sessionId,
      commandId: cmd.commandId,
      viewer: cmd.viewer,
      sessionType: cmd.sessionType,
      access: cmd.access,
      startedAt: new Date().toISOString(),
    });
    const { host, port } = this.options.viewerEndpoint;
    const n = cmd.notification;
    log.info(
      `session started: ${cmd.sessionId} ${cmd.sessionType} (${cmd.access}) for ${cmd.viewer}, viewer connects to ${host}:${port}` +
        ` [taskbar icon ${n.taskbarIcon ? 'on' : 'off'}, connection bar ${n.connectionBar ? 'on' : 'off'}, sound ${n.audibleSignal}]`,
    );
    frames.push({ v, type: 'session_started', commandId: cmd.commandId, sessionId: cmd.sessionId, connect: { host, port } });
    return frames;
  }

  /** Asks the provider, with a backstop in case it ignores the timeout; a failing provider counts as no answer. */
  private async askConsent(request: ConsentRequest): Promise<ConsentAnswer & { failed?: boolean }> {
    const stopBackstop = new AbortController();
    const backstop = waitForTimeout(request.timeoutMs + (this.options.consentGraceMs ?? 2000), stopBackstop.signal);
    try {
      return await Promise.race([this.options.consent.ask(request), backstop]);
    } catch (err) {
      this.options.log.error(`consent provider failed: ${(err as Error).message}; treating it as no answer`);
      return { outcome: 'timed_out', answeredBy: null, failed: true };
    } finally {
      stopBackstop.abort();
    }
  }

  private endSession(cmd: EndSessionCommand): Outbound[] {
    const { log, store } = this.options;
    const pending = this.pendingConsent.get(cmd.sessionId);
    if (pending) {
      log.info(`consent request for session ${cmd.sessionId} withdrawn by the server`);
      pending.abort();
    }
    if (store.removeActiveSession(cmd.sessionId)) {
      log.info(`session ended: ${cmd.sessionId} by the viewer side${cmd.reason ? ` (${cmd.reason})` : ''}`);
    } else {
      // Ending is idempotent: the server wants the session gone, and it is.
      log.info(`end_session for ${cmd.sessionId}, which is not active here; acknowledging`);
    }
    return [{ v, type: 'session_ended', sessionId: cmd.sessionId, by: 'viewer', reason: cmd.reason || null, commandId: cmd.commandId }];
  }

  /** The local user ends every active session; returns how many were ended. */
  endSessionsByUser(reason = 'ended by the local user'): number {
    const sessions = this.options.store.activeSessions();
    for (const session of sessions) {
      this.options.store.removeActiveSession(session.sessionId);
      this.options.log.info(`session ended: ${session.sessionId} by the local user`);
      this.send({ v, type: 'session_ended', sessionId: session.sessionId, by: 'user', reason, commandId: null }, null);
    }
    if (sessions.length === 0) this.options.log.info('no active session to end');
    return sessions.length;
  }
}
