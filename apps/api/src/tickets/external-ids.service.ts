import { Injectable } from '@nestjs/common';
import { Device, Principal, PrincipalIdentity } from '@rcflow/database';
import { NotFound, PrincipalFacts, UnprocessableRequest } from '@rcflow/domain';
import type { IdentitySystem } from '@rcflow/tickets';
import { AdminConnection, conflictOnDuplicate, recordAudit } from '../admin/admin-context';

export interface IdentityView {
  system: IdentitySystem;
  externalId: string;
}

/** E-mail addresses match without regard to case; the other systems' ids are exact. */
const normalized = (system: IdentitySystem, externalId: string) => (system === 'email' ? externalId.toLowerCase() : externalId);

/**
 * The ids ticket rules match: principals' identities in other systems (the assignee becomes the
 * viewer) and devices' external ids (a CMDB sys_id, an asset name). Changed with admin.write over
 * all collections, audited.
 */
@Injectable()
export class ExternalIdsService {
  constructor(private readonly admin: AdminConnection) {}

  async identities(principalId: string): Promise<IdentityView[]> {
    if (!(await this.admin.manager.getRepository(Principal).existsBy({ id: principalId }))) throw new NotFound('principal', principalId);
    const rows = await this.admin.manager
      .getRepository(PrincipalIdentity)
      .find({ where: { principalId }, order: { system: 'ASC', externalId: 'ASC' } });
    return rows.map((r) => ({ system: r.system as IdentitySystem, externalId: r.externalId }));
  }

  addIdentity(caller: PrincipalFacts, principalId: string, system: IdentitySystem, externalId: string): Promise<IdentityView> {
    return this.admin.write(caller, async (ctx) => {
      const principal = await ctx.manager.getRepository(Principal).findOneBy({ id: principalId });
      if (!principal) throw new NotFound('principal', principalId);
      if (principal.kind !== 'user') throw new UnprocessableRequest(`${principal.name} is a ${principal.kind}; only users are assignees`);
      const id = normalized(system, externalId);
      await conflictOnDuplicate(`the ${system} identity ${id} already belongs to a principal`, () =>
        ctx.manager.getRepository(PrincipalIdentity).insert({ system, externalId: id, principalId }),
      );
      await recordAudit(ctx, { stream: `principal:${principalId}`, action: 'principal.identity_added', data: { system, externalId: id } });
      return { system, externalId: id };
    });
  }

  removeIdentity(caller: PrincipalFacts, principalId: string, system: IdentitySystem, externalId: string): Promise<{ changed: boolean }> {
    return this.admin.write(caller, async (ctx) => {
      const id = normalized(system, externalId);
      const result = await ctx.manager.getRepository(PrincipalIdentity).delete({ system, externalId: id, principalId });
      const changed = (result.affected ?? 0) > 0;
      if (changed)
        await recordAudit(ctx, {
          stream: `principal:${principalId}`,
          action: 'principal.identity_removed',
          data: { system, externalId: id },
        });
      return { changed };
    });
  }

  setDeviceExternalId(
    caller: PrincipalFacts,
    deviceId: string,
    externalId: string | null,
  ): Promise<{ deviceId: string; externalId: string | null }> {
    return this.admin.write(caller, async (ctx) => {
      const device = await ctx.manager.getRepository(Device).findOne({ where: { id: deviceId }, lock: { mode: 'pessimistic_write' } });
      if (!device) throw new NotFound('device', deviceId);
      if (device.externalId !== externalId) {
        await conflictOnDuplicate(`another device has the external id ${externalId}`, () =>
          ctx.manager.getRepository(Device).update(deviceId, { externalId }),
        );
        await recordAudit(ctx, {
          stream: `device:${deviceId}`,
          action: 'device.external_id_set',
          deviceId,
          data: { from: device.externalId, to: externalId },
        });
      }
      return { deviceId, externalId };
    });
  }
}
