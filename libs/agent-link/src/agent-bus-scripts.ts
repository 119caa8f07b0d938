import type IORedis from 'ioredis';
import { AgentBusKeys, REPLY_TTL_SECONDS } from './agent-bus';

/**
 * The agent bus's Redis operations, each one Lua script so that it costs one round trip
 * (EVALSHA; ioredis falls back to EVAL when a restarted Redis has forgotten the script).
 * Each script names every key it touches in KEYS: under Redis Cluster the key prefix needs a
 * hash tag, as BullMQ's does, because a script's keys must share a slot.
 */

/**
 * Worker: the answers already given to a command (a retried job) and, when there are none or
 * `force` is set, the command appended to the device's inbox and the API processes notified.
 * KEYS: replies of the command, inbox of the device.
 * ARGV: inbox entry, inbox TTL in ms, notify channel, device id, '1' to enqueue even with answers.
 */
const SEND = `
local replies = redis.call('LRANGE', KEYS[1], 0, -1)
if #replies == 0 or ARGV[5] == '1' then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
return replies
`;

/**
 * API: takes up to ARGV[3] entries off the device's inbox, drops those past their deadline (or
 * unreadable), records the others as sent to this device and returns them with how many remain.
 * KEYS: inbox of the device, sent commands of the device.
 * ARGV: now in ms, TTL of the sent record in s, most entries to take.
 */
const DRAIN = `
local raw = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)
if #raw == 0 then return {{}, 0} end
redis.call('LTRIM', KEYS[1], #raw, -1)
local now = tonumber(ARGV[1])
local out = {}
for _, r in ipairs(raw) do
  local ok, e = pcall(cjson.decode, r)
  if ok and type(e) == 'table' and type(e.command) == 'table' and type(e.command.commandId) == 'string'
      and type(e.expiresAt) == 'number' and e.expiresAt >= now then
    redis.call('HSET', KEYS[2], e.command.commandId, string.format('%.0f', e.expiresAt))
    out[#out + 1] = r
  end
end
if #out > 0 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return {out, redis.call('LLEN', KEYS[1])}
`;

/**
 * API: an agent's answer, kept for a late reader and published to the waiting worker, only when
 * the command was sent to this device. Returns 1 when accepted, 0 when refused.
 * KEYS: sent commands of the device, replies of the command.
 * ARGV: command id, the answer, TTL of the replies in s, reply channel.
 */
const REPLY = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[2])
return 1
`;

/** How long a device's record of sent commands is kept after the last command. */
export const SENT_TTL_SECONDS = REPLY_TTL_SECONDS * 6;
/** Most inbox entries one drain takes; a longer inbox is drained in several calls. */
export const DRAIN_BATCH = 100;

type ScriptFn<A extends unknown[], R> = (...args: A) => Promise<R>;
interface ScriptCommands {
  rcflowAgentSend: ScriptFn<[string, string, string, number, string, string, string], string[]>;
  rcflowAgentDrain: ScriptFn<[string, string, number, number, number], [string[], number]>;
  rcflowAgentReply: ScriptFn<[string, string, string, string, number, string], number>;
}

/** The agent bus's scripts, defined on one ioredis connection (a plain command connection, not a subscriber). */
export class AgentBusScripts {
  private readonly redis: IORedis & ScriptCommands;

  constructor(
    redis: IORedis,
    private readonly keys: AgentBusKeys,
  ) {
    redis.defineCommand('rcflowAgentSend', { numberOfKeys: 2, lua: SEND });
    redis.defineCommand('rcflowAgentDrain', { numberOfKeys: 2, lua: DRAIN });
    redis.defineCommand('rcflowAgentReply', { numberOfKeys: 2, lua: REPLY });
    this.redis = redis as IORedis & ScriptCommands;
  }

  /**
   * Answers given so far to `commandId`; when there are none (or `force`), the entry has been
   * queued for the device and the API processes notified. `ttlMs` bounds the inbox's life.
   */
  send(deviceId: string, commandId: string, entry: string, ttlMs: number, force: boolean): Promise<string[]> {
    return this.redis.rcflowAgentSend(
      this.keys.replies(commandId),
      this.keys.inbox(deviceId),
      entry,
      ttlMs,
      this.keys.notify,
      deviceId,
      force ? '1' : '0',
    );
  }

  /** Inbox entries of the device still worth delivering, now recorded as sent to it; `remaining` are left for another call. */
  async drain(deviceId: string, now: number, max = DRAIN_BATCH): Promise<{ entries: string[]; remaining: number }> {
    const [entries, remaining] = await this.redis.rcflowAgentDrain(
      this.keys.inbox(deviceId),
      this.keys.sent(deviceId),
      now,
      SENT_TTL_SECONDS,
      max,
    );
    return { entries, remaining };
  }

  /** Records and publishes an answer; false when `commandId` was never sent to `deviceId`. */
  async reply(deviceId: string, commandId: string, answer: string): Promise<boolean> {
    const accepted = await this.redis.rcflowAgentReply(
      this.keys.sent(deviceId),
      this.keys.replies(commandId),
      commandId,
      answer,
      REPLY_TTL_SECONDS,
      this.keys.replyChannel(commandId),
    );
    return accepted === 1;
  }
}
