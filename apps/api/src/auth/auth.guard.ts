import { CanActivate, ExecutionContext, Inject, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { loadPrincipalFacts } from '@rcflow/database';
import { Permission, PrincipalFacts, hasPermission } from '@rcflow/domain';
import { Forbidden, TooManyRequests, Unauthenticated } from '@rcflow/domain';
import { digestMatches, parseKey } from './api-keys';

export const PUBLIC = 'rcflow:public';
export const REQUIRES = 'rcflow:requires';
/** Marks a route that needs no API key (health, docs). */
export const Public = () => SetMetadata(PUBLIC, true);
/** The permission a route needs somewhere in the caller's scope; object scope is checked by the service. */
export const Requires = (permission: Permission) => SetMetadata(REQUIRES, permission);

export interface AuthedRequest extends Request {
  principal: PrincipalFacts;
}

const CACHE_MS = 5000;

interface CachedKey {
  principal: PrincipalFacts;
  /** The key's stored SHA-256, decoded. */
  digest: Buffer;
  until: number;
}

interface RouteRule {
  isPublic: boolean;
  needed: Permission | undefined;
}

/**
 * Authenticates every request by API key (Authorization: Bearer rcf_…), rate-limits per
 * principal (or per address before authentication) and checks the route's permission.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  private readonly cache = new Map<string, CachedKey>();
  /** Lookups under way, so that the requests that find a key's entry expired together share one. */
  private readonly loading = new Map<string, Promise<CachedKey | null>>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  /** Each route's rule, read from its decorators once. */
  private readonly rules = new WeakMap<object, WeakMap<object, RouteRule>>();

  constructor(
    private readonly reflector: Reflector,
    private readonly dataSource: DataSource,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const rule = this.ruleOf(ctx);
    const req = ctx.switchToHttp().getRequest<AuthedRequest>();
    if (rule.isPublic) {
      this.take(`ip:${req.ip}`);
      return true;
    }
    const header = req.headers.authorization ?? '';
    const raw = header.startsWith('Bearer ') ? header.slice(7).trim() : String(req.headers['x-api-key'] ?? '');
    const parsed = parseKey(raw);
    if (!parsed) {
      this.take(`ip:${req.ip}`);
      throw new Unauthenticated();
    }
    const principal = await this.principalFor(parsed.id, parsed.secret);
    if (!principal) {
      this.take(`ip:${req.ip}`);
      throw new Unauthenticated('the API key is unknown, revoked or expired');
    }
    this.take(`p:${principal.id}`);
    req.principal = principal;
    if (rule.needed && !hasPermission(principal.grants, rule.needed)) {
      throw new Forbidden(`${principal.name} lacks the permission ${rule.needed}`);
    }
    return true;
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
      };
      byHandler.set(handler, rule);
    }
    return rule;
  }

  /** The principal of a valid, current key whose secret matches; null otherwise. */
  private async principalFor(keyId: string, secret: string): Promise<PrincipalFacts | null> {
    let entry: CachedKey | null | undefined = this.cache.get(keyId);
    if (!entry || entry.until <= Date.now()) entry = await this.load(keyId);
    return entry && digestMatches(secret, entry.digest) ? entry.principal : null;
  }

  private load(keyId: string): Promise<CachedKey | null> {
    let pending = this.loading.get(keyId);
    if (!pending) {
      pending = this.fetch(keyId).finally(() => this.loading.delete(keyId));
      this.loading.set(keyId, pending);
    }
    return pending;
  }

  private async fetch(keyId: string): Promise<CachedKey | null> {
    const [key] = await this.dataSource.query<{ principal_id: string; secret_hash: string }[]>(
      `SELECT k.principal_id, k.secret_hash FROM api_keys k JOIN principals p ON p.id = k.principal_id
        WHERE k.id = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now()) AND NOT p.disabled`,
      [keyId],
    );
    const principal = key ? await loadPrincipalFacts(this.dataSource.manager, key.principal_id) : null;
    if (!key || !principal) {
      this.cache.delete(keyId);
      return null;
    }
    if (this.cache.size > 10_000) this.cache.clear();
    const entry = { principal, digest: Buffer.from(key.secret_hash, 'hex'), until: Date.now() + CACHE_MS };
    this.cache.set(keyId, entry);
    return entry;
  }

  /** Token bucket: RATE_LIMIT_PER_MINUTE per caller, refilled continuously. */
  private take(who: string): void {
    const perMinute = this.config.http.rateLimitPerMinute;
    const now = Date.now();
    const b = this.buckets.get(who) ?? { tokens: perMinute, at: now };
    b.tokens = Math.min(perMinute, b.tokens + ((now - b.at) / 60_000) * perMinute);
    b.at = now;
    if (b.tokens < 1) {
      this.buckets.set(who, b);
      throw new TooManyRequests(Math.ceil(((1 - b.tokens) * 60) / perMinute));
    }
    b.tokens -= 1;
    if (this.buckets.size > 100_000) this.buckets.clear();
    this.buckets.set(who, b);
  }
}
