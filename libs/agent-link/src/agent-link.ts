import type { AccessMode, AudibleSignal, ConsentRule, RemoteToolsSettings, SessionType } from '@rcflow/domain';
import { countAgentCommandTimeout } from '@rcflow/observability';

/** Identifies a device for a command; commands are deduplicated by the agent on `commandId`. */
export interface AgentTarget {
  deviceId: string;
  hostname: string;
}

export interface ApplySettingsCommand extends AgentTarget {
  commandId: string;
  settings: RemoteToolsSettings;
  versionHash: string;
}

export type ApplySettingsResult = { status: 'applied'; versionHash: string } | { status: 'rejected'; reason: string };

export interface StartSessionCommand extends AgentTarget {
  commandId: string;
  sessionId: string;
  viewer: string;
  type: SessionType;
  access: AccessMode;
  consentRule: ConsentRule;
  consentTimeoutMs: number;
  /** What the agent does when nobody answers in time. */
  consentOnTimeout: 'deny' | 'allow';
  notification: { taskbarIcon: boolean; connectionBar: boolean; audibleSignal: AudibleSignal };
  /**
   * With consentRule prompt_user only: the user agreed ahead (this notice, granted, its window
   * covering now). The agent starts without a prompt if it still holds that approval, else prompts.
   */
  preApproval?: { noticeId: string } | undefined;
}

export type StartSessionResult =
  | {
      outcome: 'started';
      answeredBy: string | null;
      /** How consent went: asked and granted, not asked, unanswered with "allow" on timeout, or agreed ahead. */
      consent: 'granted' | 'not_required' | 'timed_out' | 'pre_approved';
      connect: { host: string; port: number } | null;
    }
  | { outcome: 'denied'; answeredBy: string | null }
  | { outcome: 'consent_timeout' };

export interface EndSessionCommand extends AgentTarget {
  commandId: string;
  sessionId: string;
  reason: string;
}

/** What the user at a device is told ahead of a booked session (see the protocol's session_notice). */
export interface SessionNoticeCommand extends AgentTarget {
  commandId: string;
  noticeId: string;
  sessionId: string | null;
  scheduleId: string | null;
  windowStart: Date;
  windowEnd: Date;
  viewer: string;
  type: SessionType;
  access: AccessMode;
  reason: string | null;
  askApproval: boolean;
}

/** The agent did not answer within the step's timeout. */
export class AgentTimeoutError extends Error {
  constructor(
    readonly deviceId: string,
    readonly step: string,
    readonly timeoutMs: number,
  ) {
    super(`agent of device ${deviceId} did not answer ${step} within ${timeoutMs} ms`);
    this.name = 'AgentTimeoutError';
  }
}

/** A command to `deviceId` got no answer in time: the error to throw, counted in rcflow_agent_command_timeouts_total. */
export function agentTimedOut(deviceId: string, step: string, timeoutMs: number): AgentTimeoutError {
  countAgentCommandTimeout(step);
  return new AgentTimeoutError(deviceId, step, timeoutMs);
}

/**
 * How workers reach a device's agent. Every step that talks to an agent goes through this
 * interface; each call resolves with the agent's answer or rejects with AgentTimeoutError.
 */
export interface AgentLink {
  applySettings(cmd: ApplySettingsCommand, timeoutMs: number): Promise<ApplySettingsResult>;
  startSession(cmd: StartSessionCommand, timeoutMs: number): Promise<StartSessionResult>;
  endSession(cmd: EndSessionCommand, timeoutMs: number): Promise<void>;
  /** Resolves when the agent acknowledged the notice; the user's answer, if asked, comes later through the API. */
  sendNotice(cmd: SessionNoticeCommand, timeoutMs: number): Promise<void>;
}

/** Nest injection token for the AgentLink in use. */
export const AGENT_LINK = Symbol('AGENT_LINK');

/** The settings a start command carries to the client's notification area. */
export function notificationOf(settings: RemoteToolsSettings): StartSessionCommand['notification'] {
  return {
    taskbarIcon: settings.remCtrlTaskbarIcon,
    connectionBar: settings.remCtrlConnectionBar,
    audibleSignal: settings.audibleSignal,
  };
}
