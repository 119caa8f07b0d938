import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { AuditCheckpoint, CheckpointError, parseCheckpoint, serialiseCheckpoint } from './audit-checkpoint';

/** The few Redis commands the store uses (ioredis' client has them). */
export interface CheckpointRedis {
  getBuffer(key: string): Promise<Buffer | null>;
  set(key: string, value: Buffer): Promise<unknown>;
}

export interface CheckpointStoreOptions {
  dir: string;
  /** Files kept; older ones are removed after each write. */
  keep: number;
  /** Where the newest is kept in Redis too; null redis: the directory only. */
  redis: CheckpointRedis | null;
  redisKey: string;
}

/** A checkpoint that verified, and where it was read (a file path, or `redis:<key>`). */
export interface StoredCheckpoint {
  checkpoint: AuditCheckpoint;
  source: string;
}

export interface NewestCheckpoint {
  /** The newest checkpoint whose signature verifies, from the directory or Redis; null: none. */
  found: StoredCheckpoint | null;
  /** Newest copies that did not verify (altered, foreign key, unreadable): a failure of the trail's evidence. */
  invalid: { source: string; problem: string }[];
  /** Why a place could not be read at all (Redis down): reported, not a failure. */
  notes: string[];
}

const PREFIX = 'audit-checkpoint-';
const SUFFIX = '.json.gz';
const STALE_TEMP_MS = 3600_000;

/** A file name that sorts by time: `audit-checkpoint-2026-11-29T10-15-00-123Z.json.gz`. */
export const checkpointFileName = (takenAt: string): string => `${PREFIX}${takenAt.replace(/[:.]/g, '-')}${SUFFIX}`;

/**
 * Checkpoints outside the database: files in a directory (written atomically, the last `keep`
 * kept) and the newest in Redis too, so a verifier on another machine (or one whose directory was
 * lost) still finds one.
 */
export class AuditCheckpointStore {
  readonly dir: string;

  constructor(private readonly options: CheckpointStoreOptions) {
    this.dir = resolve(options.dir);
  }

  get redisSource(): string {
    return `redis:${this.options.redisKey}`;
  }

  /** Writes the checkpoint (temporary file, fsync, rename, fsync the directory), prunes old ones, then sets Redis. Returns the path. */
  async save(cp: AuditCheckpoint): Promise<string> {
    const bytes = serialiseCheckpoint(cp);
    await mkdir(this.dir, { recursive: true });
    const path = join(this.dir, checkpointFileName(cp.takenAt));
    const temp = join(this.dir, `.${PREFIX}${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
    const file = await open(temp, 'wx', 0o600);
    try {
      await file.writeFile(bytes);
      await file.sync();
    } finally {
      await file.close();
    }
    try {
      await rename(temp, path);
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      throw err;
    }
    // The rename itself is durable only once the directory is.
    const dir = await open(this.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    await this.prune();
    if (this.options.redis) await this.options.redis.set(this.options.redisKey, bytes);
    return path;
  }

  /** The newest checkpoint file's path, or null when the directory has none. */
  async newestFile(): Promise<string | null> {
    const names = await this.files();
    return names.length ? join(this.dir, names[names.length - 1]!) : null;
  }

  /**
   * The newest checkpoint: the directory's newest file and Redis' copy are both read and checked;
   * the later valid one wins. A copy that does not verify is reported, never silently skipped.
   */
  async newest(key: string): Promise<NewestCheckpoint> {
    const result: NewestCheckpoint = { found: null, invalid: [], notes: [] };
    const candidates: StoredCheckpoint[] = [];
    const consider = (source: string, bytes: Buffer) => {
      try {
        candidates.push({ checkpoint: parseCheckpoint(key, bytes), source });
      } catch (err) {
        if (!(err instanceof CheckpointError)) throw err;
        result.invalid.push({ source, problem: `checkpoint ${err.message}` });
      }
    };
    const path = await this.newestFile();
    if (path) consider(path, await readFile(path));
    if (this.options.redis) {
      let bytes: Buffer | null = null;
      try {
        bytes = await this.options.redis.getBuffer(this.options.redisKey);
      } catch (err) {
        result.notes.push(`Redis copy not read: ${(err as Error).message}`);
      }
      if (bytes) consider(this.redisSource, bytes);
    }
    for (const c of candidates) if (!result.found || c.checkpoint.takenAt > result.found.checkpoint.takenAt) result.found = c;
    return result;
  }

  private async files(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((n) => n.startsWith(PREFIX) && n.endsWith(SUFFIX)).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  /** Keeps the newest `keep` files; removes temporary files a crashed writer left over an hour ago. */
  private async prune(): Promise<void> {
    const names = await this.files();
    for (const n of names.slice(0, Math.max(0, names.length - this.options.keep))) await unlink(join(this.dir, n)).catch(() => undefined);
    for (const n of await readdir(this.dir)) {
      if (!n.startsWith(`.${PREFIX}`) || !n.endsWith('.tmp')) continue;
      const s = await stat(join(this.dir, n)).catch(() => null);
      if (s && Date.now() - s.mtimeMs > STALE_TEMP_MS) await unlink(join(this.dir, n)).catch(() => undefined);
    }
  }
}
