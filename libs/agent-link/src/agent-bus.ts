import type { AgentCommand } from '@rcflow/agent-protocol';

/**
 * Redis keys through which workers reach agents connected to any API process:
 * a worker appends the command to the device's inbox and publishes the device id on the notify
 * channel; the API process holding the device's socket drains the inbox. Agent answers are
 * published on the command's reply channel and kept in a short list for a subscriber that
 * arrives late (a retried job).
 */
export function agentBusKeys(prefix: string) {
  return {
    inbox: (deviceId: string) => `${prefix}:agent:inbox:${deviceId}`,
    sent: (deviceId: string) => `${prefix}:agent:sent:${deviceId}`,
    notify: `${prefix}:agent:notify`,
    replyChannel: (commandId: string) => `${prefix}:agent:reply:${commandId}`,
    replies: (commandId: string) => `${prefix}:agent:replies:${commandId}`,
  };
}
export type AgentBusKeys = ReturnType<typeof agentBusKeys>;

/** An inbox entry: the command and when it stops being worth delivering. */
export interface InboxEntry {
  command: AgentCommand;
  expiresAt: number;
}

/** How long answers are kept for a late subscriber. */
export const REPLY_TTL_SECONDS = 600;
