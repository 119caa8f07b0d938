import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { appendAudit } from '@rcflow/audit';
import { loadPrincipalFacts } from '@rcflow/database';
import { newKeySecret, secretMatches } from '../auth/api-keys';
import { Conflict, Forbidden, hasPermission } from '@rcflow/domain';

const TTL_SECONDS = 60;
const TOKEN = /^rcv_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.([A-Za-z0-9_-]{43})$/;

interface TokenRow {
  id: string;
  secret_hash: string;
  expires_at: Date;
  used_at: Date | null;
  device_id: string;
  state: string;
  viewer_id: string;
  viewer: string;
}

/**
 * Short-lived, single-use tokens a viewer presents to the agent of an active session. Only their
 * hashes are stored; neither the token nor its hash is ever logged or audited.
 */
@Injectable()
export class ViewerTokens {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  async issue(viewerId: string, session: { id: string; viewerId: string; deviceId: string; state: string }) {
    if (session.viewerId !== viewerId) throw new Forbidden('only the session viewer may obtain a viewer token');
    // Read now, not from the caller's cached grants: a grant taken away refuses the next token at once.
    const [viewer, [device]] = await Promise.all([
      loadPrincipalFacts(this.dataSource.manager, viewerId),
      this.dataSource.query<{ collections: string[] }[]>(
        'SELECT ARRAY(SELECT collection_id FROM collection_members WHERE device_id = $1)::text[] AS collections',
        [session.deviceId],
      ),
    ]);
    if (!viewer || viewer.disabled || !hasPermission(viewer.grants, 'session.control', device?.collections ?? [])) {
      throw new Forbidden('the viewer no longer holds session.control over the device');
    }
    if (session.state !== 'active')
      throw new Conflict(`the session is ${session.state}; viewer tokens are issued for active sessions only`);
    const id = randomUUID();
    const { secret, hash } = newKeySecret();
    const expiresAt = new Date(Date.now() + TTL_SECONDS * 1000);
    const [row] = await this.dataSource.transaction(async (tx) => {
      await tx.query('INSERT INTO viewer_tokens (id, session_id, secret_hash, expires_at) VALUES ($1, $2, $3, $4)', [
        id,
        session.id,
        hash,
        expiresAt,
      ]);
      await appendAudit(tx, this.config.audit.hmacKey, [
        {
          stream: `session-access:${session.id}`,
          actorId: viewerId,
          actorKind: 'principal',
          action: 'viewer_token.issued',
          outcome: 'succeeded',
          sessionId: session.id,
          deviceId: session.deviceId,
          viewerId,
          data: { tokenId: id, expiresAt: expiresAt.toISOString() },
        },
      ]);
      return tx.query<{ connect_info: unknown }[]>('SELECT connect_info FROM sessions WHERE id = $1', [session.id]);
    });
    return { token: `rcv_${id}.${secret}`, expiresAt: expiresAt.toISOString(), connect: row?.connect_info ?? null };
  }

  /** Redeems a token for the agent of `deviceId`: valid once, before it expires, for that device's active session. */
  async redeem(
    deviceId: string,
    sessionId: string,
    token: string,
  ): Promise<{ valid: boolean; viewer: string | null; reason: string | null }> {
    const m = TOKEN.exec(token);
    const outcome = await this.dataSource.transaction(async (tx) => {
      const [t] = m
        ? await tx.query<TokenRow[]>(
            `SELECT t.id, t.secret_hash, t.expires_at, t.used_at, s.device_id, s.state, s.viewer_id, p.name AS viewer
               FROM viewer_tokens t JOIN sessions s ON s.id = t.session_id JOIN principals p ON p.id = s.viewer_id
              WHERE t.id = $1 AND t.session_id = $2 FOR UPDATE OF t`,
            [m[1], sessionId],
          )
        : [];
      const reason =
        !t || !secretMatches(m![2]!, t.secret_hash) || t.device_id !== deviceId
          ? 'unknown token'
          : t.used_at
            ? 'token already used'
            : new Date(t.expires_at) <= new Date()
              ? 'token expired'
              : t.state !== 'active'
                ? `session is ${t.state}`
                : null;
      // No reason means t was found (`!t` is the first check).
      if (!reason) await tx.query('UPDATE viewer_tokens SET used_at = now() WHERE id = $1', [t!.id]);
      await appendAudit(tx, this.config.audit.hmacKey, [
        {
          stream: `session-access:${sessionId}`,
          actorId: deviceId,
          actorKind: 'agent',
          action: 'viewer_token.redeemed',
          outcome: reason ? 'refused' : 'succeeded',
          sessionId,
          deviceId,
          viewerId: t?.viewer_id ?? null,
          reason,
          data: { tokenId: t?.id ?? null },
        },
      ]);
      return { valid: !reason, viewer: reason ? null : t!.viewer, reason };
    });
    return outcome;
  }
}
