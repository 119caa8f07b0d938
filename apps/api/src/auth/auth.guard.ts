import { CanActivate, ExecutionContext, Inject, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { loadPrincipalFacts } from '@rcflow/database';
import { Permission, PrincipalFacts, hasPermission } from '@rcflow/domain';
import { Forbidden, TooManyRequests, Unauthenticated } from '../common/errors';
import { parseKey, secretMatches } from './api-keys';

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

/**
 * Authenticates every request by API key (Authorization: Bearer rcf_…), rate-limits per
 * principal (or per address before authentication) and checks the route's permission.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  private readonly cache = new Map<string, { principal: PrincipalFacts; hash: string; until: number }>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly reflector: Reflector,
    private readonly dataSource: DataSource,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const targets = [ctx.getHandler(), ctx.getClass()];
    const req = ctx.switchToHttp().getRequest<AuthedRequest>();
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC, targets)) {
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
    const needed = this.reflector.getAllAndOverride<Permission | undefined>(REQUIRES, targets);
    if (needed && !hasPermission(principal.grants, needed)) {
      throw new Forbidden(`${principal.name} lacks the permission ${needed}`);
    }
    return true;
  }

  private async principalFor(keyId: string, secret: string): Promise<PrincipalFacts | null> {
    const now = Date.now();
    const hit = this.cache.get(keyId);
    if (hit && hit.until > now) return secretMatches(secret, hit.hash) ? hit.principal : null;
    const [key] = await this.dataSource.query(
      `SELECT k.principal_id, k.secret_hash FROM api_keys k JOIN principals p ON p.id = k.principal_id
        WHERE k.id = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now()) AND NOT p.disabled`,
      [keyId],
    );
    if (!key || !secretMatches(secret, key.secret_hash)) {
      this.cache.delete(keyId);
      return null;
    }
    const principal = await loadPrincipalFacts(this.dataSource.manager, key.principal_id);
    if (!principal) return null;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(keyId, { principal, hash: key.secret_hash, until: now + CACHE_MS });
    return principal;
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
