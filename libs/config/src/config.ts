import { hkdfSync } from 'node:crypto';
import { isIP } from 'node:net';
import { z } from 'zod';

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const loopbackBehaviour = z
  .object({
    settings: z.enum(['ack', 'reject', 'silent']).default('ack'),
    consent: z.enum(['grant', 'deny', 'silent']).default('grant'),
    latencyMs: z.number().int().min(0).max(60_000).default(0),
  })
  .strict();

/** Loopback agent behaviour: a default plus overrides by device hostname. */
export const loopbackAgentSchema = z
  .object({
    default: loopbackBehaviour.default({ settings: 'ack', consent: 'grant', latencyMs: 0 }),
    byHostname: z.record(z.string(), loopbackBehaviour).default({}),
  })
  .strict();
export type LoopbackAgentConfig = z.infer<typeof loopbackAgentSchema>;

/** `off` (the default) or a comma-separated list; every entry must pass `valid`. */
const listOrOff = (what: string, valid: (entry: string) => boolean) =>
  z.string().transform((raw, ctx) => {
    if (['off', 'false', 'none', ''].includes(raw.trim().toLowerCase())) return [];
    const entries = raw.split(',').map((e) => e.trim());
    const bad = entries.filter((e) => !valid(e));
    if (bad.length) {
      ctx.addIssue({
        code: 'custom',
        message: `${bad.map((b) => JSON.stringify(b)).join(', ')} ${bad.length > 1 ? 'are not' : 'is not'} ${what}`,
      });
      return z.NEVER;
    }
    return entries;
  });

const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);
/** An address, a CIDR block, or one of Express' names for a range (what `trust proxy` compiles). */
function isProxyEntry(entry: string): boolean {
  if (PROXY_NAMES.has(entry)) return true;
  const [address, bits, extra] = entry.split('/');
  const family = isIP(address ?? '');
  if (!family || extra !== undefined) return false;
  if (bits === undefined) return true;
  return /^[0-9]{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

/** A browser origin exactly as it is sent: scheme, host and port, nothing else. */
function isOrigin(entry: string): boolean {
  try {
    const u = new URL(entry);
    return (u.protocol === 'https:' || u.protocol === 'http:') && u.origin === entry;
  } catch {
    return false;
  }
}

const jsonOf = <T extends z.ZodType>(schema: T) =>
  z
    .string()
    .transform((raw, ctx) => {
      try {
        return JSON.parse(raw) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'is not valid JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);

/** Environment variables rcflow reads, validated once at start-up. */
export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: int(0, 65535).default(3000),
  PUBLIC_URL: z.url().optional(),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  PGLITE_DIR: z.string().min(1).default('.rcflow/pglite'),
  DB_POOL_SIZE: int(1, 200).default(20),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .default('redis://127.0.0.1:6379'),
  QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_{}:.-]{1,64}$/, 'letters, digits and _ { } : . - only (hash tags allowed for Redis Cluster)')
    .default('rcflow'),
  AUDIT_HMAC_KEY: z.string().min(32, 'must be at least 32 characters (use `openssl rand -hex 32`)').optional(),
  AUDIT_CHECKPOINT_INTERVAL_MS: z.coerce
    .number()
    .int()
    .refine((v) => v === 0 || (v >= 1000 && v <= 86_400_000), 'must be 0 (off) or from 1000 to 86400000 milliseconds')
    .default(300_000),
  AUDIT_CHECKPOINT_DIR: z.string().min(1).default('.rcflow/checkpoints'),
  AUDIT_CHECKPOINT_KEEP: int(1, 100_000).default(24),
  TICKET_SECRETS_KEY: z
    .string()
    .regex(/^(?:[0-9a-fA-F]{64}|[A-Za-z0-9+/]{43}=)$/, 'must be 32 bytes as 64 hex digits or base64 (use `openssl rand -hex 32`)')
    .optional(),
  TICKET_WRITEBACK_ATTEMPTS: int(1, 100).default(8),
  TICKET_WRITEBACK_BACKOFF_MS: int(10, 3_600_000).default(2000),
  TICKET_WRITEBACK_TIMEOUT_MS: int(100, 120_000).default(10_000),
  TICKET_WRITEBACK_CONCURRENCY: int(1, 256).default(8),
  /** Seals webhook signing secrets at rest; absent: a key derived from AUDIT_HMAC_KEY. */
  WEBHOOK_SECRETS_KEY: z
    .string()
    .regex(/^(?:[0-9a-fA-F]{64}|[A-Za-z0-9+/]{43}=)$/, 'must be 32 bytes as 64 hex digits or base64 (use `openssl rand -hex 32`)')
    .optional(),
  WEBHOOK_MAX_ATTEMPTS: int(1, 100).default(8),
  WEBHOOK_BACKOFF_MS: int(10, 3_600_000).default(5000),
  WEBHOOK_BACKOFF_CAP_MS: int(10, 86_400_000).default(3_600_000),
  WEBHOOK_TIMEOUT_MS: int(100, 120_000).default(10_000),
  WEBHOOK_CONCURRENCY: int(1, 256).default(8),
  WEBHOOK_DISPATCH_INTERVAL_MS: int(50, 3_600_000).default(1000),
  WEBHOOK_RETENTION_DAYS: int(1, 3650).default(30),
  /** http:// subscription URLs; default: allowed outside production only. */
  WEBHOOK_ALLOW_HTTP: bool.optional(),
  WORKER_CONCURRENCY: int(1, 1000).default(64),
  TRANSITION_BATCH_MAX: int(1, 256).default(32),
  JOB_ATTEMPTS: int(1, 50).default(5),
  JOB_BACKOFF_MS: int(10, 600_000).default(1000),
  JOB_LOCK_MS: int(1000, 600_000).default(30_000),
  JOB_KEEP_COMPLETED_SECONDS: int(0, 30 * 86400).default(3600),
  JOB_KEEP_FAILED_SECONDS: int(0, 90 * 86400).default(7 * 86400),
  SETTINGS_ACK_TIMEOUT_MS: int(100, 600_000).default(10_000),
  CONSENT_TIMEOUT_MS: int(100, 3_600_000).default(60_000),
  PRESENCE_GRACE_SECONDS: int(5, 86_400).default(90),
  OUTBOX_POLL_MS: int(10, 60_000).default(500),
  SWEEP_INTERVAL_MS: int(100, 3_600_000).default(30_000),
  SWEEP_STALE_MS: int(100, 3_600_000).default(60_000),
  SHUTDOWN_TIMEOUT_MS: int(100, 600_000).default(25_000),
  /** missedPolicy skip: how late an occurrence may still run (a timer late under load is not a missed occurrence). */
  SCHEDULE_SKIP_GRACE_SECONDS: int(0, 86_400).default(300),
  REPORT_MAX_SPAN_DAYS: int(1, 3660).default(366),
  REPORT_CONCURRENCY: int(1, 64).default(4),
  REPORT_ROLLUP_INTERVAL_MS: int(0, 86_400_000).default(60_000),
  REPORT_ROLLUP_MARGIN_MS: int(0, 3_600_000).default(30_000),
  BODY_LIMIT_BYTES: int(256, 10_485_760).default(16_384),
  RATE_LIMIT_PER_MINUTE: int(1, 1_000_000).default(6000),
  RATE_LIMIT_ADDRESS_PER_MINUTE: int(1, 1_000_000).default(600),
  RATE_LIMIT_HEALTH_PER_MINUTE: int(1, 1_000_000).default(600),
  RATE_LIMIT_ENROL_PER_MINUTE: int(1, 1_000_000).default(120),
  RATE_LIMIT_WEBHOOK_PER_MINUTE: int(1, 1_000_000).default(1200),
  RATE_LIMIT_UPGRADE_PER_MINUTE: int(1, 1_000_000).default(600),
  RATE_LIMIT_SIGNIN_PER_MINUTE: int(1, 1_000_000).default(30),
  TRUST_PROXY: listOrOff('an IP address, a CIDR block or one of loopback, linklocal, uniquelocal', isProxyEntry).default([]),
  CORS_ORIGINS: listOrOff('an origin like https://console.example.com (scheme, host, optional port; no path)', isOrigin).default([]),
  AGENT_REFUSAL_AUDIT_SECONDS: int(1, 3600).default(60),
  AGENT_TRANSPORT: z.enum(['websocket', 'loopback']).default('websocket'),
  AGENT_HEARTBEAT_SECONDS: int(1, 3600).default(30),
  AGENT_LOST_GRACE_SECONDS: int(1, 86_400).default(60),
  AGENT_MESSAGES_PER_SECOND: int(1, 10_000).default(20),
  CONSENT_TIMEOUT_OUTCOME: z.enum(['deny', 'allow']).default('deny'),
  LOOPBACK_AGENT: jsonOf(loopbackAgentSchema).optional(),
  EVENTS_POLL_MS: int(10, 60_000).default(200),
  EVENTS_HEARTBEAT_MS: int(1000, 300_000).default(15_000),
  EVENTS_MAX_STREAMS_PER_PRINCIPAL: int(1, 10_000).default(10),
  EVENTS_REPLAY_MAX: int(0, 10_000_000).default(10_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Unset: pretty lines on a terminal outside production, JSON lines otherwise. */
  LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
  METRICS_TOKEN: z
    .string()
    .regex(/^[A-Za-z0-9._~+/=-]{32,256}$/, 'must be 32 to 256 characters of A-Z a-z 0-9 . _ ~ + / = - (use `openssl rand -hex 32`)')
    .optional(),
  REQUIRE_NOEVICTION: bool.default(true),
  /** Production refuses a Redis without the append-only file unless this says otherwise. */
  REDIS_ALLOW_NO_AOF: bool.default(false),
  /** The worker's ops listener (health; metrics when added): 0 turns it off. Loopback unless told otherwise. */
  WORKER_HTTP_PORT: int(0, 65535).default(9465),
  WORKER_HTTP_HOST: z.string().min(1).default('127.0.0.1'),
  DEMO: bool.default(false),
});

export type Env = z.infer<typeof envSchema>;

/** Per-minute budgets: per principal for authenticated calls, per client address for the rest. */
export interface RateLimitBudgets {
  principal: number;
  /** Calls without a valid API key (and public routes without a budget of their own). */
  address: number;
  health: number;
  enrol: number;
  webhook: number;
  upgrade: number;
  /** Web console sign-ins (an API key exchanged for a session cookie), per client address. */
  signin: number;
}

/** The validated configuration every app and lib reads; nothing else touches process.env. */
export interface RcflowConfig {
  env: Env['NODE_ENV'];
  /** Which program this is; set by its entry point. */
  role: 'api' | 'worker' | 'cli';
  http: {
    host: string;
    port: number;
    publicUrl: string | null;
    bodyLimitBytes: number;
    /** Requests per minute of each budget, counted in Redis across every API process. */
    rateLimits: RateLimitBudgets;
    /** Proxies whose X-Forwarded-For is believed (addresses, CIDR blocks, Express' range names); empty: none. */
    trustProxy: string[];
    /** Browser origins allowed by CORS; empty: CORS off. */
    corsOrigins: string[];
  };
  database: { url: string | null; pgliteDir: string; poolSize: number };
  redis: {
    url: string;
    prefix: string;
    requireNoeviction: boolean;
    /**
     * Refuse a Redis without the append-only file (production, unless REDIS_ALLOW_NO_AOF=true):
     * without it a Redis restart loses every queued job and timer since the last snapshot.
     */
    requireAof: boolean;
  };
  /** The worker's ops HTTP listener (/health/live, /health/ready); port 0: none. */
  workerHttp: { host: string; port: number };
  audit: {
    hmacKey: string;
    /**
     * Signed checkpoints of every stream's head, kept outside the database: taken by the worker
     * every `intervalMs` (0: never), written to `dir` (the last `keep` files) and to Redis at
     * `redisKey`; the verification checks the trail against the newest.
     */
    checkpoint: { intervalMs: number; dir: string; keep: number; redisKey: string };
  };
  /** Seals ticket integrations' secrets at rest; null: ticket integrations cannot be created or used. */
  tickets: {
    secretsKey: Buffer | null;
    /**
     * Notes to tickets: attempts before a note is dead-lettered, the first backoff (doubling, or
     * the vendor's Retry-After), each request's timeout, and notes in flight per worker process.
     */
    writeback: { attempts: number; backoffMs: number; timeoutMs: number; concurrency: number };
  };
  /**
   * Outbound webhooks: the key sealing subscriptions' secrets; attempts before a delivery is dead,
   * the first retry's backoff (doubling with jitter) and its cap, each request's timeout,
   * deliveries in flight per worker process, how often the dispatcher reads the audit trail, and
   * whether http:// URLs are accepted.
   */
  webhooks: {
    secretsKey: Buffer;
    maxAttempts: number;
    backoffMs: number;
    backoffCapMs: number;
    timeoutMs: number;
    concurrency: number;
    dispatchIntervalMs: number;
    allowHttp: boolean;
    /** Deliveries that are over (delivered, dead, failed) are deleted with their attempts after this many days. */
    retentionDays: number;
  };
  jobs: {
    concurrency: number;
    attempts: number;
    backoffMs: number;
    /** How long a worker's lock on a job lasts unrenewed: a killed worker's jobs move on after this. */
    lockMs: number;
    keepCompletedSeconds: number;
    keepFailedSeconds: number;
    /**
     * Session transitions a worker process commits in one statement at most (1: each alone).
     * Measured by bench/micro/batched-transitions.cjs: far less PostgreSQL CPU per transition.
     */
    transitionBatchMax: number;
  };
  agent: {
    transport: Env['AGENT_TRANSPORT'];
    settingsAckTimeoutMs: number;
    consentTimeoutMs: number;
    /** What an agent does when nobody answers the consent prompt in time. */
    consentTimeoutOutcome: 'deny' | 'allow';
    heartbeatSeconds: number;
    /** How long past the presence grace an active session's agent may be silent before it is interrupted. */
    lostGraceSeconds: number;
    messagesPerSecond: number;
    /** Refused WebSocket upgrades are audited as one event per source and window of this length. */
    refusalAuditSeconds: number;
    loopback: LoopbackAgentConfig;
  };
  presenceGraceSeconds: number;
  outbox: { pollMs: number };
  sweep: { intervalMs: number; staleMs: number };
  schedules: { skipGraceSeconds: number };
  /** Reports: the longest time range one may cover, and reports running at once per API process (more get 429). */
  reports: {
    maxSpanDays: number;
    concurrency: number;
    /** How often the aggregate reports' rollup takes in new transitions (0: never; the reports then read sessions only). */
    rollupIntervalMs: number;
    /** The rollup takes in transitions older than this only: a transition's transaction must commit within it. */
    rollupMarginMs: number;
  };
  /**
   * The live event stream (GET /v1/events): how often each API process reads new audit events
   * (one shared reader per process), the keep-alive comment's interval, streams open at once per
   * principal and process (more get 429), and the most events a resumed stream replays before it
   * joins the live feed (more: 422, read them from the audit list).
   */
  events: { pollMs: number; heartbeatMs: number; maxStreamsPerPrincipal: number; replayMax: number };
  shutdownTimeoutMs: number;
  logLevel: Env['LOG_LEVEL'];
  /** `auto`: pretty on a terminal outside production, JSON lines otherwise. */
  logFormat: 'json' | 'pretty' | 'auto';
  /**
   * A bearer token that may scrape `GET /metrics` without an API key (Prometheus); null: only an
   * API key with admin.read over all collections may.
   */
  metrics: { token: string | null };
  demo: boolean;
}

/** Thrown when configuration is invalid; the message lists every problem with the variable to fix. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`rcflow cannot start, its configuration is invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * TICKET_SECRETS_KEY as bytes. The embedded run (no DATABASE_URL) derives one from its own audit
 * key when none is set, so the demo can show ticket triggers; a real deployment sets its own or
 * runs without ticket integrations.
 */
function ticketSecretsKey(configured: string | undefined, embeddedAuditKey: string | null): Buffer | null {
  if (configured) return Buffer.from(configured, configured.length === 64 ? 'hex' : 'base64');
  if (embeddedAuditKey === null) return null;
  return Buffer.from(hkdfSync('sha256', embeddedAuditKey, '', 'rcflow ticket secrets', 32));
}

/**
 * Validates the environment. The audit key is required whenever a real PostgreSQL is used;
 * the embedded run may supply one of its own (`embeddedAuditKey`).
 */
export function loadConfig(source: NodeJS.ProcessEnv = process.env, options: { embeddedAuditKey?: () => string } = {}): RcflowConfig {
  const known = Object.keys(envSchema.shape);
  const picked: Record<string, string> = {};
  for (const key of known) {
    const value = source[key];
    if (value !== undefined && value !== '') picked[key] = value;
  }
  const parsed = envSchema.safeParse(picked);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.') || 'environment'}: ${issue.message}`));
  }
  const e = parsed.data;
  let hmacKey = e.AUDIT_HMAC_KEY;
  if (!hmacKey) {
    if (e.DATABASE_URL || !options.embeddedAuditKey) {
      throw new ConfigError([
        'AUDIT_HMAC_KEY: required with DATABASE_URL; it keys the audit chain and must be kept outside the database (`openssl rand -hex 32`)',
      ]);
    }
    hmacKey = options.embeddedAuditKey();
  }
  return {
    env: e.NODE_ENV,
    role: 'cli',
    http: {
      host: e.HOST,
      port: e.PORT,
      publicUrl: e.PUBLIC_URL ?? null,
      bodyLimitBytes: e.BODY_LIMIT_BYTES,
      rateLimits: {
        principal: e.RATE_LIMIT_PER_MINUTE,
        address: e.RATE_LIMIT_ADDRESS_PER_MINUTE,
        health: e.RATE_LIMIT_HEALTH_PER_MINUTE,
        enrol: e.RATE_LIMIT_ENROL_PER_MINUTE,
        webhook: e.RATE_LIMIT_WEBHOOK_PER_MINUTE,
        upgrade: e.RATE_LIMIT_UPGRADE_PER_MINUTE,
        signin: e.RATE_LIMIT_SIGNIN_PER_MINUTE,
      },
      trustProxy: e.TRUST_PROXY,
      corsOrigins: e.CORS_ORIGINS,
    },
    database: { url: e.DATABASE_URL ?? null, pgliteDir: e.PGLITE_DIR, poolSize: e.DB_POOL_SIZE },
    redis: {
      url: e.REDIS_URL,
      prefix: e.QUEUE_PREFIX,
      requireNoeviction: e.REQUIRE_NOEVICTION,
      requireAof: e.NODE_ENV === 'production' && !e.REDIS_ALLOW_NO_AOF,
    },
    workerHttp: { host: e.WORKER_HTTP_HOST, port: e.WORKER_HTTP_PORT },
    audit: {
      hmacKey,
      checkpoint: {
        intervalMs: e.AUDIT_CHECKPOINT_INTERVAL_MS,
        dir: e.AUDIT_CHECKPOINT_DIR,
        keep: e.AUDIT_CHECKPOINT_KEEP,
        redisKey: `${e.QUEUE_PREFIX}:audit:checkpoint`,
      },
    },
    tickets: {
      secretsKey: ticketSecretsKey(e.TICKET_SECRETS_KEY, e.DATABASE_URL ? null : hmacKey),
      writeback: {
        attempts: e.TICKET_WRITEBACK_ATTEMPTS,
        backoffMs: e.TICKET_WRITEBACK_BACKOFF_MS,
        timeoutMs: e.TICKET_WRITEBACK_TIMEOUT_MS,
        concurrency: e.TICKET_WRITEBACK_CONCURRENCY,
      },
    },
    webhooks: {
      secretsKey: e.WEBHOOK_SECRETS_KEY
        ? Buffer.from(e.WEBHOOK_SECRETS_KEY, e.WEBHOOK_SECRETS_KEY.length === 64 ? 'hex' : 'base64')
        : Buffer.from(hkdfSync('sha256', hmacKey, '', 'rcflow webhook secrets', 32)),
      maxAttempts: e.WEBHOOK_MAX_ATTEMPTS,
      backoffMs: e.WEBHOOK_BACKOFF_MS,
      backoffCapMs: Math.max(e.WEBHOOK_BACKOFF_CAP_MS, e.WEBHOOK_BACKOFF_MS),
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      concurrency: e.WEBHOOK_CONCURRENCY,
      dispatchIntervalMs: e.WEBHOOK_DISPATCH_INTERVAL_MS,
      allowHttp: e.WEBHOOK_ALLOW_HTTP ?? e.NODE_ENV !== 'production',
      retentionDays: e.WEBHOOK_RETENTION_DAYS,
    },
    jobs: {
      concurrency: e.WORKER_CONCURRENCY,
      attempts: e.JOB_ATTEMPTS,
      backoffMs: e.JOB_BACKOFF_MS,
      lockMs: e.JOB_LOCK_MS,
      keepCompletedSeconds: e.JOB_KEEP_COMPLETED_SECONDS,
      keepFailedSeconds: e.JOB_KEEP_FAILED_SECONDS,
      transitionBatchMax: e.TRANSITION_BATCH_MAX,
    },
    agent: {
      transport: e.AGENT_TRANSPORT,
      settingsAckTimeoutMs: e.SETTINGS_ACK_TIMEOUT_MS,
      consentTimeoutMs: e.CONSENT_TIMEOUT_MS,
      consentTimeoutOutcome: e.CONSENT_TIMEOUT_OUTCOME,
      heartbeatSeconds: e.AGENT_HEARTBEAT_SECONDS,
      lostGraceSeconds: e.AGENT_LOST_GRACE_SECONDS,
      messagesPerSecond: e.AGENT_MESSAGES_PER_SECOND,
      refusalAuditSeconds: e.AGENT_REFUSAL_AUDIT_SECONDS,
      loopback: e.LOOPBACK_AGENT ?? loopbackAgentSchema.parse({}),
    },
    presenceGraceSeconds: e.PRESENCE_GRACE_SECONDS,
    outbox: { pollMs: e.OUTBOX_POLL_MS },
    sweep: { intervalMs: e.SWEEP_INTERVAL_MS, staleMs: e.SWEEP_STALE_MS },
    schedules: { skipGraceSeconds: e.SCHEDULE_SKIP_GRACE_SECONDS },
    reports: {
      maxSpanDays: e.REPORT_MAX_SPAN_DAYS,
      concurrency: e.REPORT_CONCURRENCY,
      rollupIntervalMs: e.REPORT_ROLLUP_INTERVAL_MS,
      rollupMarginMs: e.REPORT_ROLLUP_MARGIN_MS,
    },
    events: {
      pollMs: e.EVENTS_POLL_MS,
      heartbeatMs: e.EVENTS_HEARTBEAT_MS,
      maxStreamsPerPrincipal: e.EVENTS_MAX_STREAMS_PER_PRINCIPAL,
      replayMax: e.EVENTS_REPLAY_MAX,
    },
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT ?? 'auto',
    metrics: { token: e.METRICS_TOKEN ?? null },
    demo: e.DEMO,
  };
}

/** Nest injection token for RcflowConfig. */
export const RCFLOW_CONFIG = Symbol('RCFLOW_CONFIG');
