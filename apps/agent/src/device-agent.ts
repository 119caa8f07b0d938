import { PROTOCOL_VERSION, type ParseResult, type Presence, type ServerMessage } from '@rcflow/agent-protocol';
import { settingsVersionHash } from '@rcflow/domain';
import { waitForTimeout, type ConsentAnswer, type ConsentProvider, type ConsentRequest } from './consent-providers';
import type { Logger } from './logger';
import type { MachineFacts } from './presence';
import type { AgentStateStore, StoredNotice } from './state-store';
import {
  asInbound,
  type ApplySettingsCommand,
  type Command,
  type EndSessionCommand,
  type Outbound,
  type SessionNoticeCommand,
  type StartSessionCommand,
} from './protocol-types';

/**
 * How the agent answers a notice's ask for pre-approval: `ask` leaves it to the user (the
 * reference agent's console commands approve / deny / revoke), `grant` or `deny` answer at once in
 * the logged-on user's name; `revokeAfterMs` then takes a grant back after that long (simulations).
 */
export interface PreapprovalPolicy {
  answer: 'ask' | 'grant' | 'deny';
  revokeAfterMs?: number | null;
}

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
  /** Answers to pre-approval asks; default: left to the user. */
  preapproval?: PreapprovalPolicy;
  /** Names the person answering when no user is logged on (the one at the terminal). */
  whoAnswers?: () => string | null;
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
  /** Commands being carried out, so stop() can wait for their answers to go out. */
  private readonly running = new Set<Promise<void>>();
  /** Aborted by stop(): open consent requests are answered with `stopAnswer`, new ones too. */
  private readonly stopping = new AbortController();
  private stopAnswer: ConsentAnswer = { outcome: 'denied', answeredBy: null };
  private stopReason = '';

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

  /**
   * The server knows the device under an id; keep it if it differs from the one enrolment gave.
   * Then the user's answers to notices still open go again: one given while disconnected reaches
   * the server now, and one it has already is a repeat that changes nothing.
   */
  welcomed(deviceId: string): void {
    const enrolment = this.options.store.enrolment();
    if (enrolment && enrolment.deviceId !== deviceId) {
      this.options.log.warn(`server knows this device as ${deviceId}, enrolment said ${enrolment.deviceId}; keeping the server's id`);
      this.options.store.saveEnrolment({ ...enrolment, deviceId });
    }
    const now = Date.now();
    for (const n of this.options.store.notices()) {
      if (n.approval !== 'granted' && n.approval !== 'denied' && n.approval !== 'revoked') continue;
      if (Date.parse(n.windowEnd) < now) continue;
      this.send({ v, type: 'preapproval', noticeId: n.noticeId, decision: n.approval, answeredBy: n.answeredBy }, null);
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
    const run = this.command(message);
    this.running.add(run);
    try {
      await run;
    } finally {
      this.running.delete(run);
    }
  }

  /**
   * The agent is stopping: every open consent request (and any that arrives now) is answered
   * denied in `answeredBy`'s name rather than left to time out, its answer is sent, and with
   * `endSessions` the active sessions end (by 'agent', with `reason`). Resolves once those frames
   * are handed to the sink; returns how many sessions were ended.
   */
  async stop(options: { reason: string; answeredBy: string | null; endSessions: boolean }): Promise<number> {
    if (!this.stopping.signal.aborted) {
      this.stopAnswer = { outcome: 'denied', answeredBy: options.answeredBy };
      this.stopReason = options.reason;
      this.stopping.abort();
    }
    await Promise.allSettled([...this.running]);
    return options.endSessions ? this.endSessions('agent', options.reason) : 0;
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
      // After the acknowledgement, so the server hears of the notice before the answer.
      if (cmd.type === 'session_notice') this.noticeAcknowledged(cmd.noticeId);
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
      case 'session_notice':
        return this.sessionNotice(cmd);
    }
  }

  /** Shows the reminder (and the ask), and keeps the notice: the user's answer is checked at start. */
  private sessionNotice(cmd: SessionNoticeCommand): Outbound[] {
    const { log, store } = this.options;
    const what = `${cmd.viewer} will ${cmd.sessionType} this computer (${cmd.access === 'full' ? 'full control' : 'view only'})`;
    log.info(
      `reminder: ${what} between ${cmd.windowStart} and ${cmd.windowEnd}${cmd.reason ? ` (${cmd.reason})` : ''} [notice ${cmd.noticeId}]`,
    );
    if (!store.notice(cmd.noticeId)) {
      store.saveNotice({
        noticeId: cmd.noticeId,
        sessionId: cmd.sessionId,
        scheduleId: cmd.scheduleId,
        windowStart: cmd.windowStart,
        windowEnd: cmd.windowEnd,
        viewer: cmd.viewer,
        sessionType: cmd.sessionType,
        access: cmd.access,
        reason: cmd.reason,
        approval: cmd.askApproval ? 'pending' : 'not_asked',
        answeredBy: null,
        answeredAt: null,
      });
    }
    if (cmd.askApproval) {
      log.info(
        `pre-approval asked: notice ${cmd.noticeId}: allow ${what} between ${cmd.windowStart} and ${cmd.windowEnd} without asking then? ` +
          `Type "approve ${cmd.noticeId.slice(0, 8)}" or "deny ${cmd.noticeId.slice(0, 8)}"`,
      );
    }
    return [{ v, type: 'notice_received', commandId: cmd.commandId, noticeId: cmd.noticeId }];
  }

  private noticeAcknowledged(noticeId: string): void {
    const policy = this.options.preapproval ?? { answer: 'ask' };
    if (policy.answer === 'ask' || this.options.store.notice(noticeId)?.approval !== 'pending') return;
    void this.answerAs(noticeId, policy.answer === 'grant' ? 'granted' : 'denied').then(() => {
      const after = policy.revokeAfterMs;
      if (policy.answer !== 'grant' || after === null || after === undefined) return;
      setTimeout(() => void this.answerAs(noticeId, 'revoked'), after).unref();
    });
  }

  private async answerAs(noticeId: string, decision: 'granted' | 'denied' | 'revoked'): Promise<void> {
    const facts = await this.options.facts();
    this.answerNotices(noticeId, decision, facts.loggedOnUser ?? this.options.whoAnswers?.() ?? null);
  }

  /** The notices the user may answer now: asked and not past their window. */
  openNotices(): StoredNotice[] {
    const now = Date.now();
    return this.options.store.notices().filter((n) => n.approval !== 'not_asked' && Date.parse(n.windowEnd) >= now);
  }

  /**
   * The user answers: approve (granted) or deny a pending ask, or revoke an approval; `idPrefix`
   * picks the notice(s) by the start of their id, null takes every one the answer applies to.
   * Returns the notices answered.
   */
  answerNotices(idPrefix: string | null, decision: 'granted' | 'denied' | 'revoked', answeredBy: string | null): StoredNotice[] {
    const { log, store } = this.options;
    const from = decision === 'revoked' ? 'granted' : 'pending';
    const answered: StoredNotice[] = [];
    for (const n of this.openNotices()) {
      if (n.approval !== from || (idPrefix !== null && !n.noticeId.startsWith(idPrefix))) continue;
      const next: StoredNotice = { ...n, approval: decision, answeredBy, answeredAt: new Date().toISOString() };
      // Kept before it is sent: a start racing the revoke finds it revoked here, whatever the server knows.
      store.saveNotice(next);
      log.info(`pre-approval ${decision}: notice ${n.noticeId}${answeredBy ? ` by ${answeredBy}` : ''}`);
      this.send({ v, type: 'preapproval', noticeId: n.noticeId, decision, answeredBy }, null);
      answered.push(next);
    }
    if (answered.length === 0) log.info(`no notice to mark ${decision}${idPrefix ? ` matching ${idPrefix}` : ''}`);
    return answered;
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
    let outcome: 'granted' | 'denied' | 'timed_out' | 'not_required' | 'pre_approved';
    let answeredBy: string | null = null;
    let proceed: boolean;
    const held = rule === 'pre_approved' ? this.heldApproval(cmd) : null;
    if (held) {
      outcome = 'pre_approved';
      answeredBy = held.answeredBy;
      proceed = true;
      log.info(
        `consent pre-approved: session ${cmd.sessionId} on notice ${held.noticeId}${answeredBy ? ` (answered by ${answeredBy})` : ''}`,
      );
    } else if (rule === 'prompt_user' || rule === 'pre_approved') {
      const facts = await this.options.facts();
      const withdraw = new AbortController();
      this.pendingConsent.set(cmd.sessionId, withdraw);
      log.info(
        `consent asked: ${cmd.viewer} wants ${cmd.sessionType} (${cmd.access}) of session ${cmd.sessionId}; ${Math.ceil(timeoutMs / 1000)} s to answer`,
      );
      let answer: ConsentAnswer & { failed?: boolean; stopped?: boolean };
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
      const why = answer.stopped ? ` (${this.stopReason}; answered no for the user)` : '';
      log.info(
        `consent answered: ${withdrawn ? 'withdrawn by the server, reported as timed_out' : outcome}${answeredBy ? ` by ${answeredBy}` : ''}${why} for session ${cmd.sessionId}` +
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

  /**
   * The approval a pre_approved start names, if this agent still holds it granted and inside its
   * window; otherwise (revoked here, unknown, or out of its window) the user is asked after all.
   */
  private heldApproval(cmd: StartSessionCommand): StoredNotice | null {
    const id = cmd.consent.noticeId;
    const n = id ? this.options.store.notice(id) : undefined;
    const now = Date.now();
    if (n?.approval === 'granted' && Date.parse(n.windowStart) <= now && now <= Date.parse(n.windowEnd)) return n;
    this.options.log.info(`pre-approval of notice ${id ?? '?'} is not held here (${n?.approval ?? 'unknown'}); asking the user`);
    return null;
  }

  /** Asks the provider, with a backstop in case it ignores the timeout; a failing provider counts as no answer. */
  private async askConsent(request: ConsentRequest): Promise<ConsentAnswer & { failed?: boolean; stopped?: boolean }> {
    const stopBackstop = new AbortController();
    const backstop = waitForTimeout(request.timeoutMs + (this.options.consentGraceMs ?? 2000), stopBackstop.signal);
    // The agent stopping answers for the user: denied, never a silent timeout.
    const stopping = this.stopping.signal;
    let onStop: () => void = () => undefined;
    const stopped = new Promise<ConsentAnswer & { stopped: true }>((resolve) => {
      onStop = () => resolve({ ...this.stopAnswer, stopped: true });
      if (stopping.aborted) onStop();
      else stopping.addEventListener('abort', onStop, { once: true });
    });
    try {
      if (stopping.aborted) return await stopped;
      return await Promise.race([this.options.consent.ask(request), backstop, stopped]);
    } catch (err) {
      this.options.log.error(`consent provider failed: ${(err as Error).message}; treating it as no answer`);
      return { outcome: 'timed_out', answeredBy: null, failed: true };
    } finally {
      stopBackstop.abort();
      stopping.removeEventListener('abort', onStop);
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
    return this.endSessions('user', reason);
  }

  private endSessions(by: 'user' | 'agent', reason: string): number {
    const sessions = this.options.store.activeSessions();
    for (const session of sessions) {
      this.options.store.removeActiveSession(session.sessionId);
      this.options.log.info(`session ended: ${session.sessionId} by the ${by === 'user' ? 'local user' : `agent (${reason})`}`);
      this.send({ v, type: 'session_ended', sessionId: session.sessionId, by, reason, commandId: null }, null);
    }
    if (sessions.length === 0) this.options.log.info('no active session to end');
    return sessions.length;
  }
}
