import type { DataSource } from 'typeorm';
import type { RcflowConfig } from '@rcflow/config';
import { HeartbeatBatcher, heartbeatFlushMs } from './heartbeat-batcher';

/** A DataSource whose query() records its calls; `fail` makes the next calls reject. */
function fakeDataSource() {
  const calls: { sql: string; params: [string[], number[]] }[] = [];
  const ds = {
    fail: 0,
    calls,
    release: null as null | (() => void),
    hold: false,
    async query(sql: string, params: [string[], number[]]) {
      calls.push({ sql, params });
      if (ds.hold) await new Promise<void>((r) => (ds.release = r));
      if (ds.fail > 0) {
        ds.fail--;
        throw new Error('connection terminated');
      }
      return [];
    },
  };
  return ds;
}

const config = (presenceGraceSeconds: number) => ({ presenceGraceSeconds }) as RcflowConfig;

describe('HeartbeatBatcher', () => {
  it('flushes far more often than the presence grace, at most once a second', () => {
    expect(heartbeatFlushMs(90)).toBe(1000);
    expect(heartbeatFlushMs(5)).toBe(500);
    for (const grace of [5, 10, 30, 90, 86_400]) expect(heartbeatFlushMs(grace)).toBeLessThanOrEqual((grace * 1000) / 10);
  });

  it('writes every device seen since the last flush in one statement, each device once', async () => {
    const ds = fakeDataSource();
    const b = new HeartbeatBatcher(ds as unknown as DataSource, config(90));
    await b.flush();
    expect(ds.calls).toHaveLength(0); // nothing seen, nothing written

    for (const id of ['c', 'a', 'b', 'a', 'c', 'a']) b.seen(id);
    expect(b.size).toBe(3);
    await b.flush();
    expect(ds.calls).toHaveLength(1);
    const [ids, ages] = ds.calls[0].params;
    expect(ids).toEqual(['a', 'b', 'c']);
    expect(ages).toHaveLength(3);
    for (const age of ages) expect(age).toBeGreaterThanOrEqual(0);
    expect(ds.calls[0].sql).toMatch(/GREATEST\(d\.last_heartbeat_at/);
    expect(b.size).toBe(0);
    await b.flush();
    expect(ds.calls).toHaveLength(1);
  });

  it('keeps the devices of a failed write for the next one', async () => {
    const ds = fakeDataSource();
    const b = new HeartbeatBatcher(ds as unknown as DataSource, config(90));
    b.seen('a');
    b.seen('b');
    ds.fail = 1;
    await b.flush(); // does not throw: the heartbeats wait for the next interval
    expect(b.size).toBe(2);
    b.seen('c');
    await b.flush();
    expect(ds.calls.map((c) => c.params[0])).toEqual([
      ['a', 'b'],
      ['a', 'b', 'c'],
    ]);
    expect(b.size).toBe(0);
  });

  it('never runs two writes at once, and a flush during a write also writes what came meanwhile', async () => {
    const ds = fakeDataSource();
    const b = new HeartbeatBatcher(ds as unknown as DataSource, config(90));
    b.seen('a');
    ds.hold = true;
    const first = b.flush();
    b.seen('b');
    const second = b.flush();
    expect(ds.calls).toHaveLength(1);
    ds.hold = false;
    ds.release!();
    await Promise.all([first, second]);
    expect(ds.calls.map((c) => c.params[0])).toEqual([['a'], ['b']]);
  });

  it('writes what is pending when stopped', async () => {
    const ds = fakeDataSource();
    const b = new HeartbeatBatcher(ds as unknown as DataSource, config(90));
    b.start();
    b.seen('a');
    await b.stop();
    expect(ds.calls.map((c) => c.params[0])).toEqual([['a']]);
  });
});
