import type { LoopbackAgentConfig } from '@rcflow/config';
import {
  AgentLink,
  agentTimedOut,
  ApplySettingsCommand,
  ApplySettingsResult,
  EndSessionCommand,
  SessionNoticeCommand,
  StartSessionCommand,
  StartSessionResult,
} from './agent-link';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * An in-process stand-in for agents, for tests and the embedded demo until the WebSocket channel
 * exists. It behaves per device as configured and, like a real agent, applies a command id once:
 * a repeated command gets the first answer again.
 */
export class LoopbackAgentLink implements AgentLink {
  private readonly answered = new Map<string, unknown>();
  /** Consent prompts nobody answers, by session, so ending the session closes them. */
  private readonly prompts = new Map<string, () => void>();
  /** Commands applied, per command id, so tests can see that nothing was applied twice. */
  readonly applied = new Map<string, number>();

  constructor(private readonly config: LoopbackAgentConfig) {}

  private behaviour(hostname: string) {
    return this.config.byHostname[hostname] ?? this.config.default;
  }

  // async so that a throwing act() rejects, as a real link's answer would.
  // eslint-disable-next-line @typescript-eslint/require-await
  private async once<T>(commandId: string, act: () => T): Promise<T> {
    if (this.answered.has(commandId)) return this.answered.get(commandId) as T;
    const result = act();
    this.answered.set(commandId, result);
    this.applied.set(commandId, (this.applied.get(commandId) ?? 0) + 1);
    if (this.answered.size > 100_000) this.answered.delete(this.answered.keys().next().value!);
    return result;
  }

  async applySettings(cmd: ApplySettingsCommand, timeoutMs: number): Promise<ApplySettingsResult> {
    const b = this.behaviour(cmd.hostname);
    if (b.settings === 'silent' || b.latencyMs > timeoutMs) {
      await sleep(timeoutMs);
      throw agentTimedOut(cmd.deviceId, 'apply_settings', timeoutMs);
    }
    if (b.latencyMs) await sleep(b.latencyMs);
    return this.once(cmd.commandId, () =>
      b.settings === 'ack'
        ? { status: 'applied' as const, versionHash: cmd.versionHash }
        : { status: 'rejected' as const, reason: 'loopback agent configured to reject settings' },
    );
  }

  async startSession(cmd: StartSessionCommand, timeoutMs: number): Promise<StartSessionResult> {
    const b = this.behaviour(cmd.hostname);
    if (b.latencyMs > timeoutMs) {
      await sleep(timeoutMs);
      throw agentTimedOut(cmd.deviceId, 'start_session', timeoutMs);
    }
    if (b.latencyMs) await sleep(b.latencyMs);
    if (cmd.consentRule === 'prompt_user' && !cmd.preApproval && b.consent === 'silent' && !this.answered.has(cmd.commandId)) {
      // Nobody answers: the prompt stays up until its timeout, or until the session is ended.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, cmd.consentTimeoutMs);
        this.prompts.set(cmd.sessionId, () => {
          clearTimeout(timer);
          resolve();
        });
      });
      this.prompts.delete(cmd.sessionId);
    }
    return this.once(cmd.commandId, (): StartSessionResult => {
      const connect = { host: cmd.hostname, port: 5938 };
      if (cmd.consentRule !== 'prompt_user') return { outcome: 'started', answeredBy: null, consent: 'not_required', connect };
      // In-process agents hold no approvals of their own: one the server found granted is honoured.
      if (cmd.preApproval) return { outcome: 'started', answeredBy: null, consent: 'pre_approved', connect };
      if (b.consent === 'silent') {
        return cmd.consentOnTimeout === 'allow'
          ? { outcome: 'started', answeredBy: null, consent: 'timed_out', connect }
          : { outcome: 'consent_timeout' };
      }
      const answeredBy = `loopback-user@${cmd.hostname}`;
      return b.consent === 'grant' ? { outcome: 'started', answeredBy, consent: 'granted', connect } : { outcome: 'denied', answeredBy };
    });
  }

  async endSession(cmd: EndSessionCommand): Promise<void> {
    this.prompts.get(cmd.sessionId)?.();
    await this.once(cmd.commandId, () => undefined);
  }

  /**
   * Acknowledges a notice as a connected agent would (a silent agent never does). In-process
   * agents have nobody to ask: a pre-approval asked of them stays pending.
   */
  async sendNotice(cmd: SessionNoticeCommand, timeoutMs: number): Promise<void> {
    const b = this.behaviour(cmd.hostname);
    if (b.settings === 'silent' || b.latencyMs > timeoutMs) {
      await sleep(timeoutMs);
      throw agentTimedOut(cmd.deviceId, 'session_notice', timeoutMs);
    }
    if (b.latencyMs) await sleep(b.latencyMs);
    await this.once(cmd.commandId, () => undefined);
  }
}
