import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { RCFLOW_CONFIG, RcflowConfig } from '@rcflow/config';
import { TooManyRequests } from '@rcflow/domain';

/** The PostgreSQL advisory lock a running audit verification holds ('rcflow' in ASCII). */
export const VERIFY_LOCK_KEY = '125771245711223';
/** What a caller refused meanwhile is told to wait; a verification of a large trail takes seconds. */
const RETRY_AFTER_SECONDS = 5;

/**
 * One audit verification at a time across every API process: it reads the whole trail, the
 * heaviest read rcflow has. A second caller gets 429 rather than joining the running one, because
 * a result depends on the caller's scope and cannot be shared between processes; a new answer is
 * a retry away. The lock is a session-level advisory lock on a connection of its own, so a process
 * that dies mid-way releases it with its connection. The embedded PGlite run is one process: an
 * in-process flag is all it needs.
 */
@Injectable()
export class VerifyLock {
  private running = false;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(RCFLOW_CONFIG) private readonly config: RcflowConfig,
  ) {}

  async run<T>(verify: () => Promise<T>): Promise<T> {
    if (this.running) throw new TooManyRequests(RETRY_AFTER_SECONDS);
    this.running = true;
    try {
      if (!this.config.database.url) return await verify();
      const runner = this.dataSource.createQueryRunner();
      try {
        const [row] = (await runner.query('SELECT pg_try_advisory_lock($1::bigint) AS locked', [VERIFY_LOCK_KEY])) as { locked: boolean }[];
        if (!row?.locked) throw new TooManyRequests(RETRY_AFTER_SECONDS);
        try {
          return await verify();
        } finally {
          await runner.query('SELECT pg_advisory_unlock($1::bigint)', [VERIFY_LOCK_KEY]);
        }
      } finally {
        await runner.release();
      }
    } finally {
      this.running = false;
    }
  }
}
