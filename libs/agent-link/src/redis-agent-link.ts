import IORedis from 'ioredis';
import { AgentCommand, AgentMessage, agentMessageSchema } from '@rcflow/agent-protocol';
import { AgentBusKeys, InboxEntry, REPLY_TTL_SECONDS } from './agent-bus';
import { AgentBusScripts } from './agent-bus-scripts';
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

/** Frames that answer a command (they carry its commandId); the others are unsolicited. */
export type Reply = Exclude<AgentMessage, { type: 'hello' | 'heartbeat' | 'viewer_token_check' | 'preapproval' }>;

/** Whether an agent's frame answers a command. */
export function isReply(m: AgentMessage): m is Reply {
  return m.type !== 'hello' && m.type !== 'heartbeat' && m.type !== 'viewer_token_check' && m.type !== 'preapproval';
}

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
 * for its reconnection until the step's timeout.
 *
 * One pattern subscription, made once per process, receives the answers to every command; they
 * are handed to the waiting calls by command id. A command costs one script call (earlier answers
 * and the enqueue together). After a reconnection the subscription is made again and the answers
 * published while the subscriber was away are read back from their lists.
 */
export class RedisAgentLink implements AgentLink {
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly scripts: AgentBusScripts;
  private subscription: Promise<unknown> | null = null;

  constructor(
    private readonly redis: IORedis,
    private readonly subscriber: IORedis,
    private readonly keys: AgentBusKeys,
  ) {
    this.scripts = new AgentBusScripts(redis, keys);
    subscriber.on('pmessage', (pattern: string, channel: string, raw: string) => {
      if (pattern !== keys.replyPattern) return;
      const set = this.waiters.get(channel.slice(keys.replyChannelPrefix.length));
      if (!set) return; // another process's command
      const reply = this.parse(raw);
      if (!reply) return;
      for (const w of set) this.deliver(w, raw, reply);
    });
    subscriber.on('ready', () => {
      if (this.subscription) void this.resubscribe();
    });
  }

  /** Number of commands being waited for (for tests and metrics). */
  get pending(): number {
    return this.waiters.size;
  }

  /** The process's one subscription to every reply channel; made again after a failed attempt. */
  private subscribed(): Promise<unknown> {
    this.subscription ??= this.subscriber.psubscribe(this.keys.replyPattern).catch((err: unknown) => {
      this.subscription = null;
      throw err;
    });
    return this.subscription;
  }

  /**
   * After a reconnection. ioredis resubscribes too, but loses the subscription when the connection
   * drops again before Redis confirmed it; a second PSUBSCRIBE is a no-op, and once it is answered
   * the first has been applied too. Then reads back the answers published while the subscriber
   * was away.
   */
  private async resubscribe(): Promise<void> {
    try {
      await this.subscriber.psubscribe(this.keys.replyPattern);
      if (this.waiters.size === 0) return;
      const ids = [...this.waiters.keys()];
      const lists = await this.redis.pipeline(ids.map((id) => ['lrange', this.keys.replies(id), '0', '-1'])).exec();
      ids.forEach((id, i) => {
        const [err, raws] = lists?.[i] ?? [null, []];
        if (!err) this.deliverAll(id, raws as string[]);
      });
    } catch {
      // Redis went away again: the next reconnection tries again, and a step still unanswered times out and is retried.
    }
  }

  private parse(raw: string): Reply | null {
    try {
      const r = agentMessageSchema.safeParse(JSON.parse(raw));
      return r.success && isReply(r.data) ? r.data : null;
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

  private deliverAll(commandId: string, raws: string[]) {
    const set = this.waiters.get(commandId);
    if (!set) return;
    for (const raw of raws) {
      const reply = this.parse(raw);
      if (reply) for (const w of set) this.deliver(w, raw, reply);
    }
  }

  private async send<T>(deviceId: string, command: AgentCommand, timeoutMs: number, step: string, verdict: Verdict<T>): Promise<T> {
    await this.subscribed();
    const { commandId } = command;
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
    // Registered before the command goes out, so that an answer arriving at once finds its waiter.
    const set = this.waiters.get(commandId) ?? new Set<Waiter>();
    set.add(waiter);
    this.waiters.set(commandId, set);
    let timer: NodeJS.Timeout | undefined;
    try {
      const entry = JSON.stringify({ command, expiresAt: Date.now() + timeoutMs } satisfies InboxEntry);
      const ttlMs = timeoutMs + REPLY_TTL_SECONDS * 1000;
      // Answers given to an earlier attempt of this job count too; with none, the command is queued in the same call.
      let earlier = await this.scripts.send(deviceId, commandId, entry, ttlMs, false);
      this.deliverAll(commandId, earlier);
      const early = verdict(waiter.replies);
      if (early !== undefined) return early;
      // Some answers but no verdict yet (consent given, not started): queue the command again, as a
      // first attempt would; the agent answers a repeated command id without applying it twice.
      if (earlier.length > 0) {
        earlier = await this.scripts.send(deviceId, commandId, entry, ttlMs, true);
        this.deliverAll(commandId, earlier);
      }
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(agentTimedOut(deviceId, step, timeoutMs)), timeoutMs);
      });
      return await Promise.race([answered, timedOut]);
    } finally {
      clearTimeout(timer);
      set.delete(waiter);
      if (set.size === 0 && this.waiters.get(commandId) === set) this.waiters.delete(commandId);
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
        consent: cmd.preApproval
          ? { rule: 'pre_approved', noticeId: cmd.preApproval.noticeId, timeoutMs: cmd.consentTimeoutMs, onTimeout: cmd.consentOnTimeout }
          : { rule: cmd.consentRule, timeoutMs: cmd.consentTimeoutMs, onTimeout: cmd.consentOnTimeout },
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

  async sendNotice(cmd: SessionNoticeCommand, timeoutMs: number): Promise<void> {
    await this.send(
      cmd.deviceId,
      {
        v: 1,
        type: 'session_notice',
        commandId: cmd.commandId,
        noticeId: cmd.noticeId,
        sessionId: cmd.sessionId,
        scheduleId: cmd.scheduleId,
        windowStart: cmd.windowStart.toISOString(),
        windowEnd: cmd.windowEnd.toISOString(),
        viewer: cmd.viewer,
        sessionType: cmd.type,
        access: cmd.access,
        reason: cmd.reason,
        askApproval: cmd.askApproval,
      },
      timeoutMs,
      'session_notice',
      (replies) => (replies.some((r) => r.type === 'notice_received') ? true : undefined),
    );
  }
}
