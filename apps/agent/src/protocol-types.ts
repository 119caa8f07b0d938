import type { z } from 'zod';
import type {
  AgentMessage,
  applySettingsSchema,
  consentAnswerSchema,
  endSessionSchema,
  errorSchema,
  heartbeatSchema,
  helloSchema,
  noticeReceivedSchema,
  preapprovalSchema,
  ServerMessage,
  sessionEndedSchema,
  sessionNoticeSchema,
  sessionStartedSchema,
  settingsAppliedSchema,
  settingsRejectedSchema,
  startSessionSchema,
  welcomeSchema,
} from '@rcflow/agent-protocol';

// The protocol's frame() helper types `type` as plain string, so its unions cannot be narrowed
// on `type`. These views pin each frame's literal, which its schema has already checked.
type Frame<S extends z.ZodType, T extends string> = Omit<z.infer<S>, 'type'> & { type: T };

export type ApplySettingsCommand = Frame<typeof applySettingsSchema, 'apply_settings'>;
export type StartSessionCommand = Frame<typeof startSessionSchema, 'start_session'>;
export type EndSessionCommand = Frame<typeof endSessionSchema, 'end_session'>;
export type SessionNoticeCommand = Frame<typeof sessionNoticeSchema, 'session_notice'>;
export type Command = ApplySettingsCommand | StartSessionCommand | EndSessionCommand | SessionNoticeCommand;
export type Inbound = Command | Frame<typeof welcomeSchema, 'welcome'> | Frame<typeof errorSchema, 'error'>;

export type Outbound =
  | Frame<typeof helloSchema, 'hello'>
  | Frame<typeof heartbeatSchema, 'heartbeat'>
  | Frame<typeof settingsAppliedSchema, 'settings_applied'>
  | Frame<typeof settingsRejectedSchema, 'settings_rejected'>
  | Frame<typeof consentAnswerSchema, 'consent'>
  | Frame<typeof sessionStartedSchema, 'session_started'>
  | Frame<typeof sessionEndedSchema, 'session_ended'>
  | Frame<typeof noticeReceivedSchema, 'notice_received'>
  | Frame<typeof preapprovalSchema, 'preapproval'>;

/** A frame parseServerMessage accepted, seen with its literal type. */
export const asInbound = (message: ServerMessage): Inbound => message as unknown as Inbound;

// Compile-time check that every Outbound is a frame the protocol accepts.
type AssertAgentMessage<T extends AgentMessage> = T;
export type _OutboundIsAgentMessage = AssertAgentMessage<Outbound>;
