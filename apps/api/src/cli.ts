import 'reflect-metadata';
import { describeUrl, loadConfigOrExit, reason } from '@rcflow/config';
import { createDataSource } from '@rcflow/database';
import IORedis from 'ioredis';
import { AuditCheckpointStore, takeCheckpoint, verifyAudit } from '@rcflow/audit';
import { type RcflowConfig } from '@rcflow/config';
import { redisOptionsFromUrl } from '@rcflow/jobs';
import { AdministratorExists, bootstrapAdmin } from './admin/bootstrap-admin';

const USAGE = `usage: node dist/apps/api/src/cli.js <command>
  migrate                         apply pending database migrations
  bootstrap-admin [--name NAME] [--force]
                                  create a full administrator (default name "admin") and print an API key for it;
                                  refuses (exit 3) when an enabled full administrator exists, unless --force
  verify-audit [--readers N] [--partitions N]
                                  check the audit trail's tamper evidence; exit 1 and say where if it is broken
                                  (N parallel readers, default one per core; the stream range split into N parts),
                                  and against the newest checkpoint (AUDIT_CHECKPOINT_DIR, else Redis)
  audit-checkpoint                sign every audit stream's head now and write the checkpoint to
                                  AUDIT_CHECKPOINT_DIR and Redis (what the worker does periodically)`;

/** The checkpoint store with a Redis connection that fails fast instead of retrying: a command-line run. */
function checkpointStore(config: RcflowConfig): { store: AuditCheckpointStore; close: () => void } {
  const redis = new IORedis({
    ...redisOptionsFromUrl(config.redis.url),
    connectTimeout: 3000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined); // the command in flight rejects with it
  return { store: new AuditCheckpointStore({ ...config.audit.checkpoint, redis }), close: () => redis.disconnect() };
}

/** The value of a `--flag N` option: a whole number from 1 to 64, or undefined when absent. */
function count(args: string[], flag: string): number | undefined {
  const i = args.indexOf(flag);
  if (i < 0) return undefined;
  const n = Number(args[i + 1]);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error(`${flag} needs a whole number from 1 to 64`);
  return n;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return command ? 0 : 64;
  }
  const config = loadConfigOrExit('cli');
  const ds = createDataSource({ ...config.database, applicationName: 'rcflow-cli' });
  const dbUrl = config.database.url;
  await ds.initialize().catch((err: unknown) => {
    throw new Error(dbUrl ? `DATABASE_URL (${describeUrl(dbUrl, 5432)}) is unreachable: ${reason(err)}` : reason(err));
  });
  try {
    switch (command) {
      case 'migrate': {
        const done = await ds.runMigrations({ transaction: 'each' });
        process.stdout.write(done.length ? `applied ${done.map((m) => m.name).join(', ')}\n` : 'database is up to date\n');
        return 0;
      }
      case 'bootstrap-admin': {
        const i = rest.indexOf('--name');
        const name = i >= 0 ? rest[i + 1] : 'admin';
        if (!name || name.startsWith('--')) throw new Error('--name needs a value');
        const force = rest.includes('--force');
        let key: string;
        try {
          key = await ds.transaction((manager) => bootstrapAdmin(manager, config.audit.hmacKey, { name, force }));
        } catch (err) {
          if (!(err instanceof AdministratorExists)) throw err;
          process.stderr.write(`rcflow: ${err.message}\n`);
          // Its own code, so that a deployment can run this on every start and tell "done before" from a failure.
          return 3;
        }
        process.stdout.write(`${key}\n`);
        process.stderr.write(`API key for ${name} (full administrator). It is shown once; store it now.\n`);
        return 0;
      }
      case 'verify-audit': {
        const readers = count(rest, '--readers');
        const partitions = count(rest, '--partitions');
        const { store, close } = checkpointStore(config);
        const checkpoints = await store.newest(config.audit.hmacKey).finally(close);
        const r = await verifyAudit(ds, config.audit.hmacKey, { readers, partitions, checkpoints });
        process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        const cp = r.checkpoint;
        process.stderr.write(
          cp?.takenAt
            ? `checked against the checkpoint of ${cp.takenAt} (${cp.streams} streams, ${cp.source})\n`
            : `${cp?.note ?? 'no checkpoint'}\n`,
        );
        process.stderr.write(
          r.ok
            ? `audit trail verifies: ${r.eventsChecked} events in ${r.streamsChecked} streams\n`
            : `AUDIT TRAIL BROKEN: ${r.problems.length} problem(s), first: ${r.problems[0]?.stream} seq ${r.problems[0]?.seq}: ${r.problems[0]?.problem}\n`,
        );
        return r.ok ? 0 : 1;
      }
      case 'audit-checkpoint': {
        const { store, close } = checkpointStore(config);
        try {
          const outcome = await takeCheckpoint(ds, config.audit.hmacKey, store);
          if (!outcome.taken) {
            process.stderr.write('another process is taking a checkpoint right now; try again in a moment\n');
            return 75;
          }
          process.stdout.write(`${outcome.path}\n`);
          process.stderr.write(
            `checkpoint of ${outcome.checkpoint.streams} streams at ${outcome.checkpoint.takenAt}, also in Redis (${store.redisSource})\n`,
          );
          return 0;
        } finally {
          close();
        }
      }
      default:
        process.stderr.write(`unknown command "${command}"\n${USAGE}\n`);
        return 64;
    }
  } finally {
    await ds.destroy();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`rcflow: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
