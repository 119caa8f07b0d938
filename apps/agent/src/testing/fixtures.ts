import { randomUUID } from 'node:crypto';
import { parseServerMessage, type ServerMessage } from '@rcflow/agent-protocol';
import { CONFIGMGR_DEFAULT_REMOTE_TOOLS, settingsVersionHash, type RemoteToolsSettings } from '@rcflow/domain';
import type { FrameSink } from '../device-agent';
import type { MachineFacts } from '../presence';
import type { Command, Outbound } from '../protocol-types';

export const SETTINGS: RemoteToolsSettings = { ...CONFIGMGR_DEFAULT_REMOTE_TOOLS, enabled: true, permittedViewers: ['HELPDESK'] };
export const SETTINGS_HASH = settingsVersionHash(SETTINGS);

export const FACTS: MachineFacts = {
  agentVersion: '1.0.0',
  osFamily: 'linux',
  osBuild: '6.8.0',
  fqdn: null,
  domainJoined: false,
  domain: null,
  loggedOnUser: 'alice',
  locked: false,
  localAdministrators: [],
};

/** Runs a frame through the protocol's own validation, as the client does. */
export function serverFrame(frame: object): ServerMessage {
  const r = parseServerMessage(JSON.stringify(frame));
  if (!r.ok) throw new Error(`test frame is invalid: ${r.error}`);
  return r.message;
}

export const applySettings = (commandId = `cmd-${randomUUID()}`, settings = SETTINGS, versionHash = settingsVersionHash(settings)) => ({
  v: 1,
  type: 'apply_settings',
  commandId,
  versionHash,
  settings,
});

export const startSession = (
  over: {
    commandId?: string;
    sessionId?: string;
    rule?: 'prompt_user' | 'unattended_allowed' | 'not_required';
    timeoutMs?: number;
    onTimeout?: 'deny' | 'allow';
  } = {},
) => ({
  v: 1,
  type: 'start_session',
  commandId: over.commandId ?? `cmd-${randomUUID()}`,
  sessionId: over.sessionId ?? randomUUID(),
  viewer: 'bob',
  sessionType: 'remote-control',
  access: 'full',
  consent: { rule: over.rule ?? 'prompt_user', timeoutMs: over.timeoutMs ?? 1000, onTimeout: over.onTimeout ?? 'deny' },
  notification: { taskbarIcon: true, connectionBar: true, audibleSignal: 'begin_end' },
});

export const endSession = (sessionId: string, commandId = `cmd-${randomUUID()}`) => ({
  v: 1,
  type: 'end_session',
  commandId,
  sessionId,
  reason: 'viewer closed the window',
});

/** A sink that keeps what the agent sent. */
export function collectingSink(): FrameSink & { frames: Outbound[]; causes: (Command | null)[] } {
  const frames: Outbound[] = [];
  const causes: (Command | null)[] = [];
  return {
    frames,
    causes,
    send(frame, cause) {
      frames.push(frame);
      causes.push(cause);
    },
  };
}
