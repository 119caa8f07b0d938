import { CanActivate, ExecutionContext, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { randomBytes } from 'node:crypto';
import type { Request } from 'express';
import { DataSource } from 'typeorm';
import { loadPrincipalFacts } from '@rcflow/database';
import { Permission, PrincipalFacts, hasPermission } from '@rcflow/domain';
import { Forbidden, Unauthenticated } from '@rcflow/domain';
import { CONSOLE_COOKIE, CONSOLE_CSRF_HEADER, CONSOLE_CSRF_VALUE, ConsoleSessions, cookieValue } from '../console/console-sessions';
import { KeyRevocations } from '../edge/key-revocations';
import { RATE_BUDGET, RateBudget, RateLimits } from '../edge/rate-limits';
import { digestMatches, hashSecret, parseKey } from './api-keys';

export const PUBLIC = 'rcflow:public';
export const REQUIRES = 'rcflow:requires';
/** Marks a route that needs no API key (health, docs). */
export const Public = () => SetMetadata(PUBLIC, true);
/** The permission a route needs somewhere in the caller's scope; object scope is checked by the service. */
export const Requires = (permission: Permission) => SetMetadata(REQUIRES, permission);

export interface AuthedRequest extends Request {
  principal: PrincipalFacts;
}

/** How long a key's lookup is reused; revocations announced over Redis end it at once. */
const CACHE_MS = 5000;
const MAX_CACHED = 10_000;
/** The principal looked up for an unknown key, so that it costs the same round trips as a known one. */
const NO_PRINCIPAL = '00000000-0000-0000-0000-000000000000';
/** Methods a console cookie may call without the CSRF header: they change nothing. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** What an unknown key's secret is compared with: the same work as for a known key, never a match. */
const DUMMY_DIGEST = Buffer.from(hashSecret(randomBytes(32).toString('base64url')), 'hex');

interface CachedKey {
  /** null: no such valid key (unknown, revoked, expired, or its principal disabled). */
  principal: PrincipalFacts | null;
  /** The key's stored SHA-256, decoded; a random one for an unknown key. */
  digest: Buffer;
  until: number;
}

interface RouteRule {
  isPublic: boolean;
  needed: Permission | undefined;
  budget: RateBudget;
}

/**
 * Authenticates every request by API key (Authorization: Bearer rcf_…) or, without one, by the
 * web console's session cookie (which stands for the key it was exchanged for: that key is
 * re-checked on every request, and writes need the console's CSRF header), rate-limits per
 * principal (or per address without a valid key; public routes per address on their own budget)
 * and checks the route's permission. Known and unknown key ids take the same path: both are
 * looked up once per cache period and compared in constant time.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  private readonly cache = new Map<string, CachedKey>();
  /** Lookups under way, so that the requests that find a key's entry expired together share one. */
  private readonly loading = new Map<string, Promise<CachedKey>>();
  /** Bumped by every revocation: a lookup that started before it does not fill the cache. */
  private epoch = 0;
  /** Each route's rule, read from its decorators once. */
  private readonly rules = new WeakMap<object, WeakMap<object, RouteRule>>();

  constructor(
    private readonly reflector: Reflector,
    private readonly dataSource: DataSource,
    private readonly limits: RateLimits,
    revocations: KeyRevocations,
    private readonly consoleSessions: ConsoleSessions,
  ) {
    revocations.onRevoked((keyId) => this.forget(keyId));
  }

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const rule = this.ruleOf(ctx);
    const req = ctx.switchToHttp().getRequest<AuthedRequest>();
    const address = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    if (rule.isPublic) {
      // Ticket webhooks count per integration, so a flood to one does not starve the others (their senders share vendors' addresses).
      const integration = rule.budget === 'webhook' ? req.params.integrationId : undefined;
      await this.limits.consume(rule.budget, typeof integration === 'string' ? `integration:${integration.slice(0, 64)}` : address);
      return true;
    }
    const header = req.headers.authorization ?? '';
    const raw = header.startsWith('Bearer ') ? header.slice(7).trim() : String(req.headers['x-api-key'] ?? '');
    // The console's cookie counts only when the request carries no key at all: a key always wins.
    const keyless = req.headers.authorization === undefined && req.headers['x-api-key'] === undefined;
    const sid = keyless ? cookieValue(req.headers.cookie, CONSOLE_COOKIE) : null;
    const principal = sid === null ? await this.byKey(raw, address) : await this.byConsoleSession(sid, address);
    await this.limits.consume('principal', principal.id);
    if (sid !== null && !SAFE_METHODS.has(req.method) && req.headers[CONSOLE_CSRF_HEADER] !== CONSOLE_CSRF_VALUE) {
      throw new Forbidden(`a write from the web console must carry the header X-Requested-With: ${CONSOLE_CSRF_VALUE}`);
    }
    req.principal = principal;
    if (rule.needed && !hasPermission(principal.grants, rule.needed)) {
      throw new Forbidden(`${principal.name} lacks the permission ${rule.needed}`);
    }
    return true;
  }

  /**
   * The key's id and principal when `raw` is a valid, current API key whose secret matches; null
   * otherwise (the web console's sign-in exchanges such a key for a session).
   */
  async verifyKey(raw: string): Promise<{ keyId: string; principal: PrincipalFacts } | null> {
    const parsed = parseKey(raw);
    if (!parsed) return null;
    const principal = await this.principalFor(parsed.id, parsed.secret);
    return principal ? { keyId: parsed.id, principal } : null;
  }

  /**
   * The principal the request's credentials (its API key, else the console's cookie) stand for
   * now, or null once they no longer do (revoked, expired, signed out, principal disabled): a
   * long-lived answer such as the event stream re-checks with it. Through the same key cache, so
   * it lags a revocation by at most the cache period; no rate limit is charged.
   */
  async reauthenticate(req: Request): Promise<PrincipalFacts | null> {
    const header = req.headers.authorization ?? '';
    const keyless = req.headers.authorization === undefined && req.headers['x-api-key'] === undefined;
    const sid = keyless ? cookieValue(req.headers.cookie, CONSOLE_COOKIE) : null;
    if (sid === null) {
      const parsed = parseKey(header.startsWith('Bearer ') ? header.slice(7).trim() : String(req.headers['x-api-key'] ?? ''));
      return parsed ? this.principalFor(parsed.id, parsed.secret) : null;
    }
    const session = await this.consoleSessions.resolve(sid);
    if (!session) return null;
    let entry = this.cache.get(session.keyId);
    if (!entry || entry.until <= Date.now()) entry = await this.load(session.keyId);
    return entry.principal?.id === session.principalId ? entry.principal : null;
  }

  private async byKey(raw: string, address: string): Promise<PrincipalFacts> {
    const parsed = parseKey(raw);
    if (!parsed) {
      await this.limits.consume('address', address);
      throw new Unauthenticated();
    }
    const principal = await this.principalFor(parsed.id, parsed.secret);
    if (!principal) {
      await this.limits.consume('address', address);
      throw new Unauthenticated('the API key is unknown, revoked or expired');
    }
    return principal;
  }

  /** The principal of a console session whose key is still valid (its secret was compared at sign-in). */
  private async byConsoleSession(sid: string, address: string): Promise<PrincipalFacts> {
    const session = await this.consoleSessions.resolve(sid);
    let principal: PrincipalFacts | null = null;
    if (session) {
      let entry = this.cache.get(session.keyId);
      if (!entry || entry.until <= Date.now()) entry = await this.load(session.keyId);
      if (entry.principal?.id === session.principalId) principal = entry.principal;
    }
    if (!principal) {
      await this.limits.consume('address', address);
      throw new Unauthenticated('the console session is over (signed out, expired, or its API key revoked); sign in again');
    }
    return principal;
  }

  private ruleOf(ctx: ExecutionContext): RouteRule {
    const handler = ctx.getHandler();
    const controller = ctx.getClass();
    let byHandler = this.rules.get(controller);
    if (!byHandler) this.rules.set(controller, (byHandler = new WeakMap()));
    let rule = byHandler.get(handler);
    if (!rule) {
      const targets = [handler, controller];
      rule = {
        isPublic: this.reflector.getAllAndOverride<boolean>(PUBLIC, targets),
        needed: this.reflector.getAllAndOverride<Permission | undefined>(REQUIRES, targets),
        budget: this.reflector.getAllAndOverride<RateBudget | undefined>(RATE_BUDGET, targets) ?? 'address',
      };
      byHandler.set(handler, rule);
    }
    return rule;
  }

  /** The principal of a valid, current key whose secret matches; null otherwise. */
  private async principalFor(keyId: string, secret: string): Promise<PrincipalFacts | null> {
    let entry = this.cache.get(keyId);
    if (!entry || entry.until <= Date.now()) entry = await this.load(keyId);
    // Compared even when the key is unknown (against a random digest): the same work either way.
    const matches = digestMatches(secret, entry.digest);
    return matches && entry.principal ? entry.principal : null;
  }

  private load(keyId: string): Promise<CachedKey> {
    let pending = this.loading.get(keyId);
    if (!pending) {
      const p = this.fetch(keyId).finally(() => {
        if (this.loading.get(keyId) === p) this.loading.delete(keyId);
      });
      this.loading.set(keyId, (pending = p));
    }
    return pending;
  }

  private async fetch(keyId: string): Promise<CachedKey> {
    const epoch = this.epoch;
    const [key] = await this.dataSource.query<{ principal_id: string; secret_hash: string }[]>(
      `SELECT k.principal_id, k.secret_hash FROM api_keys k JOIN principals p ON p.id = k.principal_id
        WHERE k.id = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now()) AND NOT p.disabled`,
      [keyId],
    );
    const principal = await loadPrincipalFacts(this.dataSource.manager, key?.principal_id ?? NO_PRINCIPAL);
    const entry: CachedKey =
      key && principal
        ? { principal, digest: Buffer.from(key.secret_hash, 'hex'), until: Date.now() + CACHE_MS }
        : { principal: null, digest: DUMMY_DIGEST, until: Date.now() + CACHE_MS };
    // A revocation announced while this lookup ran may postdate what it read: use it once, keep nothing.
    if (epoch === this.epoch) {
      if (this.cache.size >= MAX_CACHED) this.cache.clear();
      this.cache.set(keyId, entry);
    }
    return entry;
  }

  /** A key was revoked (null: revocations may have been missed, so every key). */
  private forget(keyId: string | null): void {
    this.epoch++;
    if (keyId === null) {
      this.cache.clear();
      this.loading.clear();
    } else {
      this.cache.delete(keyId);
      this.loading.delete(keyId);
    }
  }
}
