import IORedis from 'ioredis';
import { AgentCommand, AgentMessage, agentMessageSchema } from '@rcflow/agent-protocol';
import { AgentBusKeys, InboxEntry, REPLY_TTL_SECONDS } from './agent-bus';
import {
  AgentLink,
  AgentTimeoutError,
  ApplySettingsCommand,
  ApplySettingsResult,
  EndSessionCommand,
  StartSessionCommand,
  StartSessionResult,
} from './agent-link';

type Reply = Exclude<AgentMessage, { type: 'hello' | 'heartbeat' | 'viewer_token_check' }>;

/** Decides from the answers so far whether the command is answered, and how. */
type Verdict<T> = (replies: Reply[]) => T | undefined;

interface Waiter {
  replies: Reply[];
  seen: Set<string>;
  onReply: () => void;
}

/**
 * The worker's side of the agent channel: commands go through Redis to whichever API process
 * holds the device's WebSocket (see agent-bus). A command for an offline agent waits in the inbox
 * for its reconnection until the step's timeout. One subscriber connection serves every wait.
 */
export class RedisAgentLink implements AgentLink {
  private readonly waiters = new Map<string, Set<Waiter>>();

  constructor(
    private readonly redis: IORedis,
    private readonly subscriber: IORedis,
    private readonly keys: AgentBusKeys,
  ) {
    subscriber.on('message', (channel: string, raw: string) => {
      const set = this.waiters.get(channel);
      if (!set) return;
      const reply = this.parse(raw);
      if (!reply) return;
      for (const w of set) this.deliver(w, raw, reply);
    });
  }

  private parse(raw: string): Reply | null {
    try {
      const r = agentMessageSchema.safeParse(JSON.parse(raw));
      return r.success && r.data.type !== 'hello' && r.data.type !== 'heartbeat' && r.data.type !== 'viewer_token_check' ? r.data : null;
    } catch {
      return null;
    }
  }

  private deliver(w: Waiter, raw: string, reply: Reply) {
    // Duplicate acknowledgements are the same frame again: counted once.
    if (w.seen.has(raw)) return;
    w.seen.add(raw);
    w.replies.push(reply);
    w.onReply();
  }

  private async send<T>(deviceId: string, command: AgentCommand, timeoutMs: number, step: string, verdict: Verdict<T>): Promise<T> {
    const channel = this.keys.replyChannel(command.commandId);
    let settle!: (v: T) => void;
    const answered = new Promise<T>((resolve) => (settle = resolve));
    const waiter: Waiter = {
      replies: [],
      seen: new Set(),
      onReply: () => {
        const v = verdict(waiter.replies);
        if (v !== undefined) settle(v);
      },
    };
    const set = this.waiters.get(channel) ?? new Set<Waiter>();
    if (set.size === 0) await this.subscriber.subscribe(channel);
    set.add(waiter);
    this.waiters.set(channel, set);
    let timer: NodeJS.Timeout | undefined;
    try {
      // Answers given before we subscribed (to an earlier attempt of this job) count too.
      for (const raw of await this.redis.lrange(this.keys.replies(command.commandId), 0, -1)) {
        const reply = this.parse(raw);
        if (reply) this.deliver(waiter, raw, reply);
      }
      const early = verdict(waiter.replies);
      if (early !== undefined) return early;
      const entry: InboxEntry = { command, expiresAt: Date.now() + timeoutMs };
      const inbox = this.keys.inbox(deviceId);
      await this.redis
        .multi()
        .rpush(inbox, JSON.stringify(entry))
        .pexpire(inbox, timeoutMs + REPLY_TTL_SECONDS * 1000)
        .publish(this.keys.notify, deviceId)
        .exec();
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new AgentTimeoutError(deviceId, step, timeoutMs)), timeoutMs);
      });
      return await Promise.race([answered, timedOut]);
    } finally {
      clearTimeout(timer);
      set.delete(waiter);
      if (set.size === 0) {
        this.waiters.delete(channel);
        await this.subscriber.unsubscribe(channel).catch(() => undefined);
      }
    }
  }

  applySettings(cmd: ApplySettingsCommand, timeoutMs: number): Promise<ApplySettingsResult> {
    return this.send(
      cmd.deviceId,
      { v: 1, type: 'apply_settings', commandId: cmd.commandId, versionHash: cmd.versionHash, settings: cmd.settings },
      timeoutMs,
      'apply_settings',
      (replies) => {
        for (const r of replies) {
          if (r.type === 'settings_applied') return { status: 'applied' as const, versionHash: r.versionHash };
          if (r.type === 'settings_rejected') return { status: 'rejected' as const, reason: r.reason };
        }
        return undefined;
      },
    );
  }

  startSession(cmd: StartSessionCommand, timeoutMs: number): Promise<StartSessionResult> {
    if (cmd.consentRule === 'refused') throw new Error('a session whose consent rule is "refused" is never started');
    return this.send(
      cmd.deviceId,
      {
        v: 1,
        type: 'start_session',
        commandId: cmd.commandId,
        sessionId: cmd.sessionId,
        viewer: cmd.viewer,
        sessionType: cmd.type,
        access: cmd.access,
        consent: { rule: cmd.consentRule, timeoutMs: cmd.consentTimeoutMs, onTimeout: cmd.consentOnTimeout },
        notification: cmd.notification,
      },
      timeoutMs,
      'start_session',
      (replies): StartSessionResult | undefined => {
        const consent = replies.find((r) => r.type === 'consent');
        const started = replies.find((r) => r.type === 'session_started');
        if (consent?.type === 'consent' && consent.outcome === 'denied') return { outcome: 'denied', answeredBy: consent.answeredBy };
        if (started?.type === 'session_started') {
          const how = consent?.type === 'consent' ? consent.outcome : 'not_required';
          return {
            outcome: 'started',
            answeredBy: consent?.type === 'consent' ? consent.answeredBy : null,
            consent: how === 'denied' ? 'granted' : how,
            connect: started.connect,
          };
        }
        if (consent?.type === 'consent' && consent.outcome === 'timed_out' && cmd.consentOnTimeout === 'deny') {
          return { outcome: 'consent_timeout' };
        }
        return undefined;
      },
    );
  }

  async endSession(cmd: EndSessionCommand, timeoutMs: number): Promise<void> {
    await this.send(
      cmd.deviceId,
      { v: 1, type: 'end_session', commandId: cmd.commandId, sessionId: cmd.sessionId, reason: cmd.reason },
      timeoutMs,
      'end_session',
      (replies) => (replies.some((r) => r.type === 'session_ended') ? true : undefined),
    );
  }
}
