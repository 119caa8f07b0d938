import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { loadEligibilityInput } from '@rcflow/database';
import {
  DEFAULT_ELIGIBILITY_POLICY,
  MOMENT_CHECK_IDS,
  NotFound,
  STANDING_CHECK_IDS,
  UnprocessableRequest,
  accessEntries,
  deviceReach,
  evaluateEligibility,
  reviewPrincipal,
  type AccessEntry,
  type DeviceFacts,
  type DeviceReach,
  type EligibilityPolicy,
  type PrincipalFacts,
  type ReviewPrincipal,
  scopeOf,
} from '@rcflow/domain';
import { AccessReviewStore, type ReviewWorld } from './access-review.store';
import type { CheckQuery } from './access-review.schemas';

/** What every answer says about what "can reach" leaves out. */
export const NOT_CONSIDERED = {
  presenceNotConsidered: true,
  notConsidered: MOMENT_CHECK_IDS,
  note:
    'who can start each session type whenever the device is online and someone (or, where allowed, no one) is at it: ' +
    'presence, other sessions holding the device and a request’s reason are checked when a session is asked for',
} as const;

export interface DeviceLine {
  device: { id: string; hostname: string };
  entries: AccessEntry[];
}

/** Devices read per keyset page while a principal's review streams. */
const DEVICE_PAGE = 2000;

/**
 * The access review: who can reach a device, what a principal can reach, and why (not) for a pair.
 * Reads the principals, groups, assignments and settings once per request and decides each pair in
 * memory with the standing eligibility checks of libs/domain; scope is the caller's audit.read.
 */
@Injectable()
export class AccessReviewService {
  private readonly policy: EligibilityPolicy;

  constructor(
    private readonly store: AccessReviewStore,
    private readonly dataSource: DataSource,
    @Inject(RCFLOW_CONFIG) config: RcflowConfig,
  ) {
    this.policy = { ...DEFAULT_ELIGIBILITY_POLICY, presenceGraceSeconds: config.presenceGraceSeconds };
  }

  private scope(caller: PrincipalFacts): string[] | null {
    return scopeOf(caller.grants, 'audit.read');
  }

  async device(caller: PrincipalFacts, id: string) {
    const [device, world] = await Promise.all([this.store.device(id, this.scope(caller)), this.store.world()]);
    if (!device) throw new NotFound('device', id);
    const { settings } = world.settingsFor(device);
    const reach = deviceReach(device, settings, this.policy);
    const entries: AccessEntry[] = [];
    for (const p of world.dir.principals.values()) {
      if (p.kind === 'group' || p.disabled) continue;
      entries.push(...accessEntries(device, settings, reach, reviewPrincipal(world.dir, p.id)!, world.dir));
    }
    entries.sort((a, b) => a.principal.name.localeCompare(b.principal.name) || a.sessionType.localeCompare(b.sessionType));
    return {
      device: { id: device.id, hostname: device.hostname },
      ...NOT_CONSIDERED,
      sessionTypes: reach,
      entries,
    };
  }

  /** The principal reviewed: 404 when unknown, 422 for a group (a group never starts a session). */
  async principal(id: string): Promise<{ world: ReviewWorld; who: ReviewPrincipal }> {
    const world = await this.store.world();
    const who = reviewPrincipal(world.dir, id);
    if (!who) throw new NotFound('principal', id);
    if (who.principal.kind === 'group') {
      throw new UnprocessableRequest(`${who.principal.name} is a group: groups cannot start sessions; review its members`);
    }
    return { world, who };
  }

  /**
   * The devices the principal can reach among those in the caller's scope, in id order after
   * `after`, one page of devices read at a time. Only devices where the principal holds
   * session.control are read (the scope rule of check 2); the checks decide each one.
   */
  async *reachable(
    caller: PrincipalFacts,
    world: ReviewWorld,
    who: ReviewPrincipal,
    after: string | null,
    isAborted: () => boolean = () => false,
  ): AsyncGenerator<DeviceLine & { scanned: string }> {
    const controlScope = scopeOf(who.facts.grants, 'session.control');
    if (who.principal.disabled || (controlScope !== null && controlScope.length === 0)) return;
    const callerScope = this.scope(caller);
    const reaches = new Map<string, DeviceReach>();
    let last = after;
    for (;;) {
      const page = await this.store.devicePage(last, callerScope, controlScope, DEVICE_PAGE);
      for (const device of page) {
        if (isAborted()) return;
        const { settings, key } = world.settingsFor(device);
        // What the device side allows depends on these fields and the settings only (not the hostname).
        const reachKey = `${key}|${device.enrolled}|${device.retired}|${device.domainJoined}|${device.osFamily}|${device.osBuild}|${device.agentVersion}`;
        let reach = reaches.get(reachKey);
        if (!reach) reaches.set(reachKey, (reach = deviceReach(device, settings, this.policy)));
        const entries = accessEntries(device, settings, reach, who, world.dir);
        if (entries.length > 0) yield { device: { id: device.id, hostname: device.hostname }, entries, scanned: device.id };
      }
      if (page.length < DEVICE_PAGE) return;
      last = page[page.length - 1]!.id;
    }
  }

  /** One JSON page of a principal's review: up to `limit` reachable devices after the cursor's device. */
  async principalPage(caller: PrincipalFacts, id: string, limit: number, after: string | null) {
    const { world, who } = await this.principal(id);
    const items: DeviceLine[] = [];
    let nextCursor: string | null = null;
    for await (const line of this.reachable(caller, world, who, after)) {
      if (items.length === limit) {
        nextCursor = items[items.length - 1]!.device.id;
        break;
      }
      items.push({ device: line.device, entries: line.entries });
    }
    return {
      principal: { id: who.principal.id, name: who.principal.name, kind: who.principal.kind },
      ...NOT_CONSIDERED,
      items,
      nextCursor,
    };
  }

  /** The ten checks of the dry run for the principal as its own viewer, and what the review makes of them. */
  async check(caller: PrincipalFacts, q: CheckQuery) {
    const device = await this.store.device(q.deviceId, this.scope(caller));
    if (!device) throw new NotFound('device', q.deviceId);
    const input = await loadEligibilityInput(this.dataSource.manager, {
      deviceId: q.deviceId,
      requesterId: q.principalId,
      viewerId: q.principalId,
      ask: { type: q.type, access: q.access, reason: q.reason ?? null, ticketRef: q.ticketRef ?? null, immediate: true },
      sessionId: null,
      now: new Date(),
      policy: this.policy,
    });
    if ('missing' in input) throw new NotFound('principal', q.principalId);
    const viewer = input.viewer!;
    if (viewer.kind === 'group') {
      throw new UnprocessableRequest(`${viewer.name} is a group: groups cannot start sessions; check one of its members`);
    }
    const decision = evaluateEligibility(input);
    const standing = decision.checks.filter((c) => (STANDING_CHECK_IDS as readonly string[]).includes(c.id));
    return {
      device: deviceRef(device),
      principal: { id: viewer.id, name: viewer.name, kind: viewer.kind },
      type: q.type,
      access: q.access,
      /** Every standing check passes: the principal can reach the device for this type and access. */
      canReach: standing.every((c) => c.passed),
      /** All ten pass now, presence included: a request made now would be eligible. */
      eligibleNow: decision.eligible,
      ...NOT_CONSIDERED,
      consentRule: decision.consentRule,
      unattended: decision.unattended,
      checks: decision.checks.map((c) => ({ ...c, standing: (STANDING_CHECK_IDS as readonly string[]).includes(c.id) })),
    };
  }
}

const deviceRef = (d: DeviceFacts) => ({ id: d.id, hostname: d.hostname });
