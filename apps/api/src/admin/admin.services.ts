import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { loadEffectiveSettings } from '@rcflow/database';
import { PrincipalFacts, scopeOf } from '@rcflow/domain';
import { Forbidden, NotFound } from '@rcflow/domain';
import * as q from './admin-queries';

/**
 * Administration writes: each runs in one transaction with its audit event (admin-store appends
 * it), with the caller as actor.
 *
 * Writes need admin.write over every collection. Principals, role assignments, API keys and
 * client settings are global, so a grant scoped to some collections must not change them:
 * otherwise a scoped administrator could grant itself full_administrator over everything.
 */
@Injectable()
export class AdminWrites {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  run<T>(caller: PrincipalFacts, write: (tx: EntityManager, auditKey: string, actorId: string) => Promise<T>): Promise<T> {
    if (scopeOf(caller.grants, 'admin.write') !== null) {
      throw new Forbidden(`${caller.name} holds admin.write over some collections only; administration changes need it over all collections`);
    }
    return this.dataSource.transaction((tx) => write(tx, this.config.audit.hmacKey, caller.id));
  }
}

/**
 * Administration reads. Devices and collections are limited to the caller's admin.read scope (an
 * id outside it answers 404 like an unknown one); principals, role assignments, API keys (never
 * their hashes) and client settings are global objects any admin.read holder sees.
 */
@Injectable()
export class AdminReads {
  constructor(private readonly dataSource: DataSource) {}

  private get m(): EntityManager {
    return this.dataSource.manager;
  }

  private scope(caller: PrincipalFacts): string[] | null {
    return scopeOf(caller.grants, 'admin.read');
  }

  async device(caller: PrincipalFacts, id: string): Promise<q.DeviceView> {
    const d = await q.findDevice(this.m, id, this.scope(caller));
    if (!d) throw new NotFound('device', id);
    return d;
  }

  devices(caller: PrincipalFacts, f: { hostname?: string; collectionId?: string; limit: number; cursor?: string }) {
    return q.listDevices(this.m, { ...f, scope: this.scope(caller) });
  }

  async effectiveSettings(caller: PrincipalFacts, id: string) {
    await this.device(caller, id);
    const s = await loadEffectiveSettings(this.m, id);
    return { deviceId: id, values: s.values, provenance: s.provenance, versionHash: s.versionHash };
  }

  async collection(caller: PrincipalFacts, id: string): Promise<q.CollectionView> {
    const c = await q.findCollection(this.m, id, this.scope(caller));
    if (!c) throw new NotFound('collection', id);
    return c;
  }

  collections(caller: PrincipalFacts, f: { limit: number; cursor?: string }) {
    return q.listCollections(this.m, { ...f, scope: this.scope(caller) });
  }

  async collectionMembers(caller: PrincipalFacts, id: string, f: { limit: number; cursor?: string }) {
    await this.collection(caller, id);
    // Every member of a collection in scope is in scope.
    return q.listDevices(this.m, { ...f, collectionId: id, scope: null });
  }

  async clientSettings(id: string): Promise<q.ClientSettingsView> {
    const s = await q.findClientSettings(this.m, id);
    if (!s) throw new NotFound('client settings', id);
    return s;
  }

  async allClientSettings(): Promise<q.Page<q.ClientSettingsView>> {
    return { items: await q.listClientSettings(this.m), nextCursor: null };
  }

  async principal(id: string): Promise<q.PrincipalDetailView> {
    const p = await q.findPrincipalDetail(this.m, id);
    if (!p) throw new NotFound('principal', id);
    return p;
  }

  principals(f: { kind?: string; name?: string; limit: number; cursor?: string }) {
    return q.listPrincipals(this.m, f);
  }

  async roleAssignment(id: string): Promise<q.RoleAssignmentView> {
    const r = await q.findRoleAssignment(this.m, id);
    if (!r) throw new NotFound('role assignment', id);
    return r;
  }

  roleAssignments(f: { principalId?: string; limit: number; cursor?: string }) {
    return q.listRoleAssignments(this.m, f);
  }

  async apiKey(id: string): Promise<q.ApiKeyView> {
    const k = await q.findApiKey(this.m, id);
    if (!k) throw new NotFound('API key', id);
    return k;
  }

  apiKeys(f: { principalId?: string; limit: number; cursor?: string }) {
    return q.listApiKeys(this.m, f);
  }
}
