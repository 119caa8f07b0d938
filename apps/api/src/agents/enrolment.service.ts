import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { appendAudit } from '@rcflow/audit';
import { EnrolRequest, Presence, formatCredential, parseCredential } from '@rcflow/agent-protocol';
import { newKeySecret, secretMatches } from '../auth/api-keys';
import { DomainError } from '@rcflow/domain';
import { AgentSockets } from './agent-sockets';

/** An agent's enrolment or connection was refused; the reason is audited and told to the agent. */
export class AgentRefused extends DomainError {
  constructor(message: string) {
    super(401, 'agent_refused', message);
  }
}

export interface AuthenticatedDevice {
  deviceId: string;
  hostname: string;
  credentialId: string;
}

/** Why a device credential is refused, and the audit stream (and device) the refusal belongs to. */
export interface CredentialRefusal {
  refused: string;
  stream: string;
  deviceId: string | null;
}

/** The columns of enrolment_tokens that enrolment reads. */
interface EnrolmentTokenRow {
  secret_hash: string;
  revoked_at: Date | null;
  expires_at: Date | string;
  uses: number;
  max_uses: number;
  hostname: string | null;
  device_id: string | null;
  collection_id: string | null;
}

/** A device credential with the device it belongs to. */
interface CredentialRow {
  device_id: string;
  secret_hash: string;
  revoked_at: Date | null;
  hostname: string;
  retired: boolean;
}

/** Writes the presence an agent reports onto its device row. */
export async function recordPresence(tx: EntityManager, deviceId: string, p: Presence): Promise<void> {
  await tx.query(
    `UPDATE devices SET agent_version = $2, os_family = $3, os_build = $4, fqdn = $5, domain_joined = $6, domain = $7,
        logged_on_user = $8, locked = $9, local_administrators = $10::text[], applied_settings_hash = $11,
        last_heartbeat_at = now(), updated_at = now()
      WHERE id = $1`,
    [
      deviceId,
      p.agentVersion,
      p.osFamily,
      p.osBuild,
      p.fqdn,
      p.domainJoined,
      p.domain,
      p.loggedOnUser,
      p.locked,
      p.localAdministrators,
      p.appliedSettingsHash,
    ],
  );
}

/**
 * The exchange of an enrolment token for a device credential, and the check of that credential.
 * Every refusal is audited. Tokens and credentials are administered in the admin module
 * (admin/enrolment-admin.service.ts).
 */
@Injectable()
export class EnrolmentService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly sockets: AgentSockets,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  private audit(
    tx: EntityManager,
    stream: string,
    actorId: string | null,
    action: string,
    outcome: string,
    data: Record<string, unknown>,
    deviceId: string | null = null,
  ) {
    return appendAudit(tx, this.config.audit.hmacKey, [
      { stream, actorId, actorKind: actorId ? 'principal' : 'agent', action, outcome, deviceId, data },
    ]);
  }

  private async refuse(
    stream: string,
    action: string,
    reason: string,
    data: Record<string, unknown>,
    deviceId: string | null = null,
  ): Promise<never> {
    await this.dataSource.transaction((tx) => this.audit(tx, stream, null, action, 'refused', { reason, ...data }, deviceId));
    throw new AgentRefused(reason);
  }

  /**
   * Exchanges an enrolment token for a credential bound to one device. A token bound to a device
   * (deviceId) re-keys that device only: its earlier credentials are revoked and its open sockets
   * closed. Any other token creates a new device (joining the token's collection) and is refused
   * for the host name of an existing one: no takeover.
   */
  async enrol(req: EnrolRequest, remote: string): Promise<{ deviceId: string; credential: string }> {
    const parsed = parseCredential(req.token, 'rce');
    if (!parsed) return this.refuse('enrolment:unknown', 'agent.enrolment', 'unknown enrolment token', { hostname: req.hostname, remote });
    const credentialId = randomUUID();
    const { secret, hash } = newKeySecret();
    const outcome = await this.dataSource.transaction(async (tx) => {
      const [t] = await tx.query<EnrolmentTokenRow[]>('SELECT * FROM enrolment_tokens WHERE id = $1 FOR UPDATE', [parsed.id]);
      const problem =
        !t || !secretMatches(parsed.secret, t.secret_hash)
          ? 'unknown enrolment token'
          : t.revoked_at
            ? 'enrolment token revoked'
            : new Date(t.expires_at) <= new Date()
              ? 'enrolment token expired'
              : t.uses >= t.max_uses
                ? 'enrolment token already used'
                : t.hostname && t.hostname.toLowerCase() !== req.hostname.toLowerCase()
                  ? `enrolment token is bound to another host name than ${req.hostname}`
                  : null;
      if (problem || !t) return { problem: problem ?? 'unknown enrolment token', tokenKnown: Boolean(t) };
      // `claimable`: registered ahead of its agent (never keyed) and in the token's collection.
      const [existing] = await tx.query<{ id: string; retired: boolean; claimable: boolean }[]>(
        `SELECT d.id, d.retired,
                NOT EXISTS (SELECT 1 FROM device_credentials c WHERE c.device_id = d.id)
                AND EXISTS (SELECT 1 FROM collection_members m WHERE m.device_id = d.id AND m.collection_id = $2::uuid) AS claimable
           FROM devices d WHERE lower(d.hostname) = lower($1) FOR UPDATE OF d`,
        [req.hostname, t.collection_id],
      );
      if (existing?.retired) return { problem: `device ${req.hostname} is retired`, tokenKnown: true };
      if (t.device_id && existing?.id !== t.device_id) {
        return { problem: `enrolment token is bound to another device than ${req.hostname}`, tokenKnown: true };
      }
      // A device registered ahead of its agent is claimed by the first agent that enrols with a token
      // of its collection; a device that ever held a credential is re-keyed only by a token bound to it.
      if (!t.device_id && existing && !existing.claimable) {
        return {
          problem: `a device named ${req.hostname} already exists; only a token bound to it (deviceId) may replace its credential, or a token of its collection enrol it the first time`,
          tokenKnown: true,
        };
      }
      let deviceId = existing?.id;
      if (!deviceId) {
        if (t.collection_id) {
          const [collection] = await tx.query<unknown[]>('SELECT 1 FROM collections WHERE id = $1 FOR SHARE', [t.collection_id]);
          if (!collection) return { problem: "the enrolment token's collection no longer exists", tokenKnown: true };
        }
        deviceId = randomUUID();
        await tx.query(`INSERT INTO devices (id, hostname, os_family, enrolled) VALUES ($1, $2, $3, true)`, [
          deviceId,
          req.hostname,
          req.presence.osFamily,
        ]);
        if (t.collection_id) {
          await tx.query('INSERT INTO collection_members (collection_id, device_id) VALUES ($1, $2)', [t.collection_id, deviceId]);
        }
      }
      await tx.query('UPDATE devices SET enrolled = true WHERE id = $1', [deviceId]);
      await recordPresence(tx, deviceId, req.presence);
      // A re-key replaces the device's earlier credentials.
      await tx.query('UPDATE device_credentials SET revoked_at = now() WHERE device_id = $1 AND revoked_at IS NULL', [deviceId]);
      await tx.query('INSERT INTO device_credentials (id, device_id, secret_hash, enrolment_token_id) VALUES ($1, $2, $3, $4)', [
        credentialId,
        deviceId,
        hash,
        parsed.id,
      ]);
      await tx.query('UPDATE enrolment_tokens SET uses = uses + 1 WHERE id = $1', [parsed.id]);
      await this.audit(
        tx,
        `device:${deviceId}`,
        null,
        'agent.enrolled',
        'succeeded',
        {
          hostname: req.hostname,
          enrolmentTokenId: parsed.id,
          credentialId,
          created: !existing,
          collectionId: existing ? null : t.collection_id,
          remote,
        },
        deviceId,
      );
      return { deviceId, rekeyed: Boolean(existing) };
    });
    if ('problem' in outcome) {
      return this.refuse(`enrolment:${outcome.tokenKnown ? parsed.id : 'unknown'}`, 'agent.enrolment', outcome.problem!, {
        hostname: req.hostname,
        remote,
      });
    }
    // The replaced credentials' sockets close on every API process; the new one is kept.
    if (outcome.rekeyed) await this.sockets.credentialsRevoked(outcome.deviceId, credentialId);
    return { deviceId: outcome.deviceId, credential: formatCredential('rcd', credentialId, secret) };
  }

  /**
   * The device a credential belongs to, or why it is refused and in which audit stream that
   * belongs. Not audited here: the gateway audits refused upgrades in aggregates (a flood of bad
   * credentials must not become a flood of audit events).
   */
  async authenticate(raw: string | undefined): Promise<AuthenticatedDevice | CredentialRefusal> {
    const value = raw?.startsWith('Bearer ') ? raw.slice(7).trim() : '';
    const parsed = parseCredential(value, 'rcd');
    if (!parsed) return { refused: 'missing or malformed device credential', stream: 'agent-auth:unknown', deviceId: null };
    const [c] = await this.dataSource.query<CredentialRow[]>(
      `SELECT c.device_id, c.secret_hash, c.revoked_at, d.hostname, d.retired FROM device_credentials c
         JOIN devices d ON d.id = c.device_id WHERE c.id = $1`,
      [parsed.id],
    );
    if (!c || !secretMatches(parsed.secret, c.secret_hash)) {
      return { refused: 'unknown device credential', stream: 'agent-auth:unknown', deviceId: null };
    }
    if (c.revoked_at) return { refused: 'device credential revoked', stream: `device:${c.device_id}`, deviceId: c.device_id };
    if (c.retired) return { refused: 'device is retired', stream: `device:${c.device_id}`, deviceId: c.device_id };
    return { deviceId: c.device_id, hostname: c.hostname, credentialId: parsed.id };
  }
}
