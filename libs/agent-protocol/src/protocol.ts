import { z } from 'zod';
import { ACCESS_MODES, SESSION_TYPES, findUnstorableText, remoteToolsFullSchema } from '@rcflow/domain';

/** The protocol version both sides speak; a frame with another `v` is refused. */
export const PROTOCOL_VERSION = 1;
/** Largest frame either side accepts, in bytes. */
export const MAX_FRAME_BYTES = 64 * 1024;
/** Path of the agent WebSocket on the API. */
export const AGENT_WS_PATH = '/v1/agent/ws';

const id = z.string().regex(/^[A-Za-z0-9:._-]{1,128}$/, 'must be 1-128 characters of letters, digits and : . _ -');
const uuid = z.uuid();
const name = z.string().min(1).max(256);
const hash = z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 hex digest');
const frame = <K extends string, T extends z.ZodRawShape>(type: K, shape: T) =>
  z.strictObject({ v: z.literal(PROTOCOL_VERSION), type: z.literal(type), ...shape });

/** What an agent reports of the machine and who sits at it. */
export const presenceSchema = z.strictObject({
  agentVersion: z.string().regex(/^\d+(\.\d+){0,3}([-+][0-9A-Za-z.-]+)?$/, 'must be a dotted version'),
  osFamily: z.enum(['windows', 'linux', 'macos']),
  osBuild: z.string().max(64),
  fqdn: z.string().max(253).nullable(),
  domainJoined: z.boolean(),
  domain: z.string().max(253).nullable(),
  loggedOnUser: z.string().max(256).nullable(),
  locked: z.boolean(),
  localAdministrators: z.array(name).max(200),
  /** The settings version the agent has applied and persisted, or null if none. */
  appliedSettingsHash: hash.nullable(),
});
export type Presence = z.infer<typeof presenceSchema>;

// ---- agent → server -------------------------------------------------------------------------

export const helloSchema = frame('hello', { presence: presenceSchema });
export const heartbeatSchema = frame('heartbeat', { presence: presenceSchema });
export const settingsAppliedSchema = frame('settings_applied', { commandId: id, versionHash: hash });
export const settingsRejectedSchema = frame('settings_rejected', { commandId: id, reason: z.string().min(1).max(1000) });
export const consentAnswerSchema = frame('consent', {
  commandId: id,
  sessionId: uuid,
  /** `pre_approved`: started on the user's agreement given ahead (a session_notice), without a prompt. */
  outcome: z.enum(['granted', 'denied', 'timed_out', 'not_required', 'pre_approved']),
  answeredBy: z.string().max(256).nullable(),
});
export const sessionStartedSchema = frame('session_started', {
  commandId: id,
  sessionId: uuid,
  /** Where the viewer connects; the token to present is issued by rcflow, not the agent. */
  connect: z.strictObject({ host: z.string().min(1).max(253), port: z.number().int().min(1).max(65535) }),
});
export const sessionEndedSchema = frame('session_ended', {
  sessionId: uuid,
  by: z.enum(['user', 'viewer', 'agent']),
  reason: z.string().max(1000).nullable(),
  /** Set when answering an end_session command. */
  commandId: id.nullable(),
});

/** A viewer presented a token to the agent; the agent asks rcflow whether to let it in (single use). */
export const viewerTokenCheckSchema = frame('viewer_token_check', {
  requestId: id,
  sessionId: uuid,
  token: z.string().max(200),
});

/** The agent received a session_notice (answers its commandId; the user's answer, if asked, comes later as `preapproval`). */
export const noticeReceivedSchema = frame('notice_received', { commandId: id, noticeId: uuid });

/**
 * The user at the device answered a notice's ask for pre-approval, or took back an approval given
 * (`revoked`). Unsolicited, like session_ended by the user; rcflow accepts it only for a notice of
 * this device while the answer still applies, and a repeated answer changes nothing.
 */
export const preapprovalSchema = frame('preapproval', {
  noticeId: uuid,
  decision: z.enum(['granted', 'denied', 'revoked']),
  answeredBy: z.string().min(1).max(256).nullable(),
});

export const agentMessageSchema = z.discriminatedUnion('type', [
  noticeReceivedSchema,
  preapprovalSchema,
  viewerTokenCheckSchema,
  helloSchema,
  heartbeatSchema,
  settingsAppliedSchema,
  settingsRejectedSchema,
  consentAnswerSchema,
  sessionStartedSchema,
  sessionEndedSchema,
]);
export type AgentMessage = z.infer<typeof agentMessageSchema>;

// ---- server → agent -------------------------------------------------------------------------

export const applySettingsSchema = frame('apply_settings', { commandId: id, versionHash: hash, settings: remoteToolsFullSchema });
export const startSessionSchema = frame('start_session', {
  commandId: id,
  sessionId: uuid,
  viewer: name,
  sessionType: z.enum(SESSION_TYPES),
  access: z.enum(ACCESS_MODES),
  consent: z
    .strictObject({
      /**
       * `pre_approved`: the user agreed ahead (notice `noticeId`) and the session is inside its
       * window; the agent starts without a prompt if it still holds that approval unrevoked, else it
       * prompts as for `prompt_user` (the agent is the final arbiter of a revoke racing the start).
       */
      rule: z.enum(['prompt_user', 'unattended_allowed', 'not_required', 'pre_approved']),
      /** With `pre_approved` only: the notice whose approval applies. */
      noticeId: uuid.optional(),
      timeoutMs: z.number().int().min(100).max(3_600_000),
      /** What the agent does when nobody answers: deny (the safe default) or allow. */
      onTimeout: z.enum(['deny', 'allow']),
    })
    .refine((c) => (c.rule === 'pre_approved') === (c.noticeId !== undefined), {
      path: ['noticeId'],
      message: 'is given with rule pre_approved, and only then',
    }),
  notification: z.strictObject({
    taskbarIcon: z.boolean(),
    connectionBar: z.boolean(),
    audibleSignal: z.enum(['none', 'begin_end', 'repeatedly']),
  }),
});
/**
 * Tells the user at the device ahead of a booked session (a reminder), and when `askApproval`,
 * asks them to agree ahead to a session inside [windowStart, windowEnd]. Answered by notice_received;
 * the agent keeps the notice and sends `preapproval` when the user answers or takes it back.
 */
export const sessionNoticeSchema = frame('session_notice', {
  commandId: id,
  noticeId: uuid,
  /** The one-off booking's session, or the schedule whose occurrence it is (exactly one is set). */
  sessionId: uuid.nullable(),
  scheduleId: uuid.nullable(),
  windowStart: z.iso.datetime({ offset: true }),
  windowEnd: z.iso.datetime({ offset: true }),
  viewer: name,
  sessionType: z.enum(SESSION_TYPES),
  access: z.enum(ACCESS_MODES),
  reason: z.string().max(1000).nullable(),
  askApproval: z.boolean(),
}).superRefine((f, ctx) => {
  if ((f.sessionId === null) === (f.scheduleId === null))
    ctx.addIssue({ code: 'custom', path: ['sessionId'], message: 'exactly one of sessionId and scheduleId must be set' });
  if (Date.parse(f.windowEnd) < Date.parse(f.windowStart))
    ctx.addIssue({ code: 'custom', path: ['windowEnd'], message: 'must not be before windowStart' });
});
export const endSessionSchema = frame('end_session', { commandId: id, sessionId: uuid, reason: z.string().max(1000) });
export const welcomeSchema = frame('welcome', { deviceId: uuid, heartbeatSeconds: z.number().int().min(1) });
export const errorSchema = frame('error', {
  code: z.enum(['bad_frame', 'bad_version', 'unexpected', 'rate_limited', 'unknown_command']),
  message: z.string().max(2000),
});

export const viewerTokenResultSchema = frame('viewer_token_result', {
  requestId: id,
  sessionId: uuid,
  valid: z.boolean(),
  viewer: name.nullable(),
  reason: z.string().max(500).nullable(),
});

export const serverMessageSchema = z.discriminatedUnion('type', [
  viewerTokenResultSchema,
  applySettingsSchema,
  startSessionSchema,
  endSessionSchema,
  sessionNoticeSchema,
  welcomeSchema,
  errorSchema,
]);
export type ServerMessage = z.infer<typeof serverMessageSchema>;
export type AgentCommand = Extract<ServerMessage, { type: 'apply_settings' | 'start_session' | 'end_session' | 'session_notice' }>;

export type ParseResult<T> = { ok: true; message: T } | { ok: false; code: 'bad_frame' | 'bad_version'; error: string };

function parseFrame<T>(schema: z.ZodType<T>, raw: string | Buffer): ParseResult<T> {
  const text = typeof raw === 'string' ? raw : raw.toString('utf8');
  if (Buffer.byteLength(text) > MAX_FRAME_BYTES) return { ok: false, code: 'bad_frame', error: `frame exceeds ${MAX_FRAME_BYTES} bytes` };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: 'bad_frame', error: 'frame is not valid JSON' };
  }
  const v = (value as { v?: unknown } | null | undefined)?.v;
  if (v !== PROTOCOL_VERSION) {
    return {
      ok: false,
      code: 'bad_version',
      error: `protocol version ${JSON.stringify(v)} is not supported; this server speaks ${PROTOCOL_VERSION}`,
    };
  }
  // Text PostgreSQL cannot store exactly (NUL, a lone surrogate) makes the frame malformed: an
  // answer carrying it waits or times out like any malformed answer, never fails a transition.
  const unstorable = findUnstorableText(value);
  if (unstorable) return { ok: false, code: 'bad_frame', error: `${unstorable.path}: ${unstorable.problem}` };
  const r = schema.safeParse(value);
  if (!r.success) {
    return { ok: false, code: 'bad_frame', error: r.error.issues.map((i) => `${i.path.join('.') || 'frame'}: ${i.message}`).join('; ') };
  }
  return { ok: true, message: r.data };
}

/** Validates a frame an agent sent. */
export const parseAgentMessage = (raw: string | Buffer) => parseFrame(agentMessageSchema, raw);
/** Validates a frame the server sent. */
export const parseServerMessage = (raw: string | Buffer) => parseFrame(serverMessageSchema, raw);

/** Credentials: enrolment tokens `rce_<id>.<secret>`, device credentials `rcd_<id>.<secret>`. */
const CREDENTIAL = /^(rce|rcd)_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.([A-Za-z0-9_-]{43})$/;
export function parseCredential(raw: string, kind: 'rce' | 'rcd'): { id: string; secret: string } | null {
  const m = CREDENTIAL.exec(raw);
  return m?.[1] === kind ? { id: m[2]!, secret: m[3]! } : null; // both groups are mandatory in the pattern
}
export const formatCredential = (kind: 'rce' | 'rcd', credentialId: string, secret: string) => `${kind}_${credentialId}.${secret}`;

/** Body of POST /v1/agent/enrol. */
export const enrolRequestSchema = z.strictObject({
  token: z.string().max(200),
  hostname: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/, 'must be a host name of at most 63 characters'),
  presence: presenceSchema,
});
export type EnrolRequest = z.infer<typeof enrolRequestSchema>;
export interface EnrolResponse {
  deviceId: string;
  credential: string;
}
