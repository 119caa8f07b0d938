import { Inject, Injectable } from '@nestjs/common';
import { createHash, randomBytes } from 'node:crypto';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { DomainError } from '@rcflow/domain';
import { EDGE_REDIS, EdgeRedis } from '../edge/edge-redis';

/** The web console's session cookie: an opaque random id, never the API key. */
export const CONSOLE_COOKIE = 'rcflow_console';
/** The header every cookie-authenticated write must carry; a cross-site form or image cannot set it. */
export const CONSOLE_CSRF_HEADER = 'x-requested-with';
export const CONSOLE_CSRF_VALUE = 'rcflow-console';
/** A session unused this long ends (each use pushes it back). */
export const CONSOLE_IDLE_SECONDS = 30 * 60;
/** A session ends this long after sign-in, however busy. */
export const CONSOLE_MAX_SECONDS = 8 * 60 * 60;

const SID = /^[A-Za-z0-9_-]{43}$/;

/** What the server keeps for one console session: which API key signed in, and until when. */
export interface ConsoleSession {
  keyId: string;
  principalId: string;
  /** Epoch ms: the absolute end. */
  until: number;
}

/**
 * Console sessions in Redis, shared by every API process. The cookie holds 32 random bytes;
 * Redis holds only their SHA-256 (someone reading Redis cannot replay a cookie) with the API key's
 * id, not its secret: each request re-checks that key (revoked, expired, principal disabled → out).
 * Sign-out deletes the entry, which a signed cookie could not undo before its expiry.
 */
@Injectable()
export class ConsoleSessions {
  private readonly prefix: string;

  constructor(
    @Inject(EDGE_REDIS) private readonly redis: EdgeRedis,
    @Inject(RCFLOW_CONFIG) config: RcflowConfig,
  ) {
    this.prefix = `${config.redis.prefix}:console:`;
  }

  /** A new session for the key; returns the cookie's value. */
  async create(keyId: string, principalId: string): Promise<string> {
    const sid = randomBytes(32).toString('base64url');
    const session: ConsoleSession = { keyId, principalId, until: Date.now() + CONSOLE_MAX_SECONDS * 1000 };
    await unavailableWithoutRedis(() => this.redis.client.set(this.keyOf(sid), JSON.stringify(session), 'EX', CONSOLE_IDLE_SECONDS));
    return sid;
  }

  /** The session a cookie names, its idle timer pushed back; null when unknown, malformed or over. */
  async resolve(sid: string): Promise<ConsoleSession | null> {
    if (!SID.test(sid)) return null;
    const raw = await unavailableWithoutRedis(() => this.redis.client.getex(this.keyOf(sid), 'EX', CONSOLE_IDLE_SECONDS));
    if (!raw) return null;
    const session = JSON.parse(raw) as ConsoleSession;
    if (session.until <= Date.now()) {
      await this.destroy(sid);
      return null;
    }
    return session;
  }

  async destroy(sid: string): Promise<void> {
    if (SID.test(sid)) await unavailableWithoutRedis(() => this.redis.client.del(this.keyOf(sid)));
  }

  private keyOf(sid: string): string {
    return this.prefix + createHash('sha256').update(sid).digest('hex');
  }
}

/** Redis not answering is a 503 a person can act on, not an internal error. */
async function unavailableWithoutRedis<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch {
    throw new DomainError(503, 'unavailable', 'console sessions are kept in Redis, which does not answer; retry shortly');
  }
}

/** The value of one cookie in a Cookie header (no cookie-parser: this is the only cookie rcflow reads). */
export function cookieValue(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}
