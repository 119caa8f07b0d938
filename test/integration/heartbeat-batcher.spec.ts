import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { loadConfig } from '../../libs/config/src';
import { createDataSource } from '../../libs/database/src';
import { HeartbeatBatcher } from '../../apps/api/src/agents/heartbeat-batcher';
import { TEST_AUDIT_KEY, freshDatabase } from '../support/env';

/** The batched last-seen write against real PostgreSQL. */
describe('heartbeat batcher', () => {
  let ds: DataSource;
  let batcher: HeartbeatBatcher;

  beforeAll(async () => {
    const config = loadConfig({ DATABASE_URL: await freshDatabase('heartbeats'), AUDIT_HMAC_KEY: TEST_AUDIT_KEY });
    ds = createDataSource(config.database);
    await ds.initialize();
    batcher = new HeartbeatBatcher(ds, config);
  });
  afterAll(async () => {
    await ds.destroy();
  });

  const device = async (lastHeartbeat: string | null) => {
    const [d] = await ds.query(
      `INSERT INTO devices (hostname, os_family, logged_on_user, last_heartbeat_at, updated_at)
       VALUES ($1, 'windows', 'CONTOSO\\carol', $2::timestamptz, now() - interval '1 hour') RETURNING id`,
      [`hb-${randomUUID().slice(0, 8)}`, lastHeartbeat],
    );
    return d.id as string;
  };
  const row = async (id: string) =>
    (
      await ds.query(
        `SELECT last_heartbeat_at, logged_on_user, now() - last_heartbeat_at AS age,
                extract(epoch FROM now() - last_heartbeat_at) AS age_s, extract(epoch FROM now() - updated_at) AS updated_s
           FROM devices WHERE id = $1`,
        [id],
      )
    )[0];

  it('moves the last heartbeat of every device seen to when it was seen, in one statement', async () => {
    const never = await device(null);
    const stale = await device(new Date(Date.now() - 3600_000).toISOString());
    const untouched = await device(new Date(Date.now() - 3600_000).toISOString());
    batcher.seen(never);
    batcher.seen(stale);
    batcher.seen(randomUUID()); // a device deleted meanwhile: nothing to update, no error
    await batcher.flush();
    for (const id of [never, stale]) {
      const r = await row(id);
      expect(Number(r.age_s)).toBeGreaterThanOrEqual(0);
      expect(Number(r.age_s)).toBeLessThan(60);
      expect(Number(r.updated_s)).toBeLessThan(60);
      expect(r.logged_on_user).toBe('CONTOSO\\carol'); // presence is not rewritten by a repeated heartbeat
    }
    expect(Number((await row(untouched)).age_s)).toBeGreaterThan(3000);
  });

  it('never moves a last heartbeat back (a presence write that landed while the batch waited)', async () => {
    const ahead = new Date(Date.now() + 3600_000);
    const id = await device(ahead.toISOString());
    batcher.seen(id);
    await batcher.flush();
    expect(new Date((await row(id)).last_heartbeat_at).getTime()).toBe(ahead.getTime());
  });
});
