import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { appendAudit, type AuditEntry } from '@rcflow/audit';
import { isUniqueViolation } from '@rcflow/database';
import { Conflict, Forbidden, PrincipalFacts, scopeOf } from '@rcflow/domain';

/*
 * What every administration write runs with (vendure's RequestContext + TransactionalConnection
 * shape): the transaction's EntityManager, the audit HMAC key and the principal acting. Each
 * aggregate's service exposes its writes as plain functions of an AdminContext, so the demo seed,
 * the CLI and tests run them without Nest inside a transaction of their own; the injectable
 * services wrap the same functions for HTTP.
 *
 * `actorId` is null when the system acts (seed, CLI): the event is then recorded with actorKind
 * 'system'. Inputs are validated again inside the functions with the schemas the HTTP layer uses,
 * so a seed cannot store what the API would refuse. A change that changes nothing (adding an
 * existing member, revoking a revoked key, a patch with the current values) writes nothing and
 * reports `changed: false` where the result has that field.
 */
export interface AdminContext {
  /** A transactional manager (`dataSource.transaction((manager) => …)`): the change and its audit event commit together. */
  readonly manager: EntityManager;
  readonly auditKey: string;
  readonly actorId: string | null;
}

export interface MembershipResult {
  changed: boolean;
}

/**
 * Transactions for administration. Writes need admin.write over every collection: principals,
 * role assignments, API keys and client settings are global, so a grant scoped to some collections
 * must not change them (otherwise a scoped administrator could grant itself full_administrator over
 * everything). Reads run on the plain manager, scoped by admin.read where the object has a scope.
 */
@Injectable()
export class AdminConnection {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  /** Runs `work` in one transaction as `caller`, after checking admin.write over all collections. */
  write<T>(caller: PrincipalFacts, work: (ctx: AdminContext) => Promise<T>): Promise<T> {
    if (scopeOf(caller.grants, 'admin.write') !== null) {
      throw new Forbidden(
        `${caller.name} holds admin.write over some collections only; administration changes need it over all collections`,
      );
    }
    return this.transaction(caller.id, work);
  }

  /** Runs `work` in one transaction as `actorId`, without the all-collections check (the route's guard decides). */
  transaction<T>(actorId: string, work: (ctx: AdminContext) => Promise<T>): Promise<T> {
    return this.dataSource.transaction((manager) => work({ manager, auditKey: this.config.audit.hmacKey, actorId }));
  }

  /** For reads outside a transaction. */
  get manager(): EntityManager {
    return this.dataSource.manager;
  }

  /** The collections whose devices and collections `caller` may read (null = all). */
  readScope(caller: PrincipalFacts): string[] | null {
    return scopeOf(caller.grants, 'admin.read');
  }
}

/** Appends the succeeded event of an administration change in the change's transaction. */
export async function recordAudit(ctx: AdminContext, entry: Omit<AuditEntry, 'actorId' | 'actorKind' | 'outcome'>): Promise<void> {
  await appendAudit(ctx.manager, ctx.auditKey, [
    { ...entry, actorId: ctx.actorId, actorKind: ctx.actorId === null ? 'system' : 'principal', outcome: 'succeeded' },
  ]);
}

/** Runs an insert or update, turning a unique violation into a 409 with `message`. */
export async function conflictOnDuplicate<T>(message: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (isUniqueViolation(err)) throw new Conflict(message);
    throw err;
  }
}

export type Changes = Record<string, { from: unknown; to: unknown }>;

/** The fields of `patch` whose (normalized) value differs from `current`. */
export function changesOf<T extends object>(current: T, patch: { [K in keyof T]?: T[K] | undefined }): Changes {
  const changes: Changes = {};
  for (const field of Object.keys(patch) as (keyof T & string)[]) {
    const to = patch[field];
    if (to === undefined) continue;
    const from = current[field] ?? null;
    if (JSON.stringify(from) !== JSON.stringify(to)) changes[field] = { from, to };
  }
  return changes;
}

/** The properties of `values` named in `changes`: what an update writes. */
export function pickChanged<T extends object>(values: T, changes: Changes): T {
  return Object.fromEntries(Object.entries(values).filter(([field]) => field in changes)) as T;
}

/** An ISO date-time as a Date, keeping undefined (not sent) and null (cleared) apart. */
export function dateOrNull(s: string | null | undefined): Date | null | undefined {
  return s === undefined ? undefined : s === null ? null : new Date(s);
}

/** A timestamp column as the API shows it. */
export const isoOrNull = (d: Date | null): string | null => (d === null ? null : d.toISOString());
