import type { AgentCommand } from '@rcflow/agent-protocol';

/**
 * Redis keys through which workers reach agents connected to any API process:
 * a worker appends the command to the device's inbox and publishes the device id on the notify
 * channel; the API process holding the device's socket drains the inbox and records the command
 * as sent to that device. Agent answers are published on the command's reply channel (each worker
 * process listens to all of them through one pattern subscription) and kept in a short list for a
 * reader that arrives late (a retried job).
 */
export function agentBusKeys(prefix: string) {
  const replyChannelPrefix = `${prefix}:agent:reply:`;
  return {
    inbox: (deviceId: string) => `${prefix}:agent:inbox:${deviceId}`,
    sent: (deviceId: string) => `${prefix}:agent:sent:${deviceId}`,
    notify: `${prefix}:agent:notify`,
    /** Carries `CredentialsRevoked`: every API process closes the device's sockets it holds. */
    revoked: `${prefix}:agent:revoked`,
    replyChannelPrefix,
    replyChannel: (commandId: string) => `${replyChannelPrefix}${commandId}`,
    /** Matches every reply channel of this prefix, and only those. */
    replyPattern: `${replyChannelPrefix.replace(/[\\*?[\]]/g, '\\$&')}*`,
    replies: (commandId: string) => `${prefix}:agent:replies:${commandId}`,
  };
}
export type AgentBusKeys = ReturnType<typeof agentBusKeys>;

/** A device's credentials were revoked or replaced: close its sockets, but one authenticated by `keep` (the new credential). */
export interface CredentialsRevoked {
  deviceId: string;
  keep: string | null;
}

/** An inbox entry: the command and when it stops being worth delivering. */
export interface InboxEntry {
  command: AgentCommand;
  expiresAt: number;
}

/** How long answers are kept for a late subscriber. */
export const REPLY_TTL_SECONDS = 600;
