import type { EntityManager } from 'typeorm';
import { TransitionBatcher, isBatchable } from './transition-batcher';
import type { TransitionRequest } from './session-store';

const KEY = 'k'.repeat(40);
const HEAD = { seq: 1, hash: '0'.repeat(64) };

const request = (sessionId: string, extra: Partial<TransitionRequest> = {}): TransitionRequest => ({
  sessionId,
  from: 'eligible',
  expectedVersion: 1,
  actor: { id: null, kind: 'system' },
  steps: [{ to: 'pushing_settings' }],
  known: { head: HEAD, deviceId: `device-${sessionId}`, viewerId: 'viewer', ticketRef: null },
  ...extra,
});

/**
 * A database stand-in: a batched statement (recognised by its unnest of the requests) answers the
 * sessions not fenced out; a single one answers one row unless fenced out. Either may be told to fail.
 */
function fakeManager(opts: { fenced?: string[]; failBatch?: Error; failAlone?: Record<string, Error> } = {}) {
  const statements: { batch: boolean; ids: string[] }[] = [];
  const manager = {
    async query(text: string, values: unknown[]) {
      const batch = text.includes('AS r(id, from_state');
      const ids = batch ? (values[0] as string[]) : values.filter((v): v is string => typeof v === 'string' && v.startsWith('s'));
      const id = batch ? undefined : ids.find((v) => /^s\d+$/.test(v));
      statements.push({ batch, ids: batch ? ids : [id!] });
      if (batch && opts.failBatch) throw opts.failBatch;
      if (!batch && id && opts.failAlone?.[id]) throw opts.failAlone[id];
      const applied = (batch ? ids : [id!]).filter((i) => !opts.fenced?.includes(i));
      return applied.map((i) => ({ id: i, version: 2, ok: 0 }));
    },
  };
  return { manager: manager as unknown as EntityManager, statements };
}

describe('TransitionBatcher', () => {
  it('sends waiting requests in one statement and answers each caller with its own result', async () => {
    const { manager, statements } = fakeManager({ fenced: ['s2'] });
    const batcher = new TransitionBatcher(manager, KEY, { max: 8, waitMs: 60_000 });
    const pending = ['s1', 's2', 's3'].map((id) => batcher.apply(request(id)));
    batcher.flush();
    const [a, b, c] = await Promise.all(pending);
    expect(statements).toEqual([{ batch: true, ids: ['s1', 's2', 's3'] }]);
    expect(a).toMatchObject({ state: 'pushing_settings', version: 2, head: { seq: 2 } });
    expect(b).toBeNull();
    expect(c).toMatchObject({ state: 'pushing_settings', version: 2, head: { seq: 2 } });
    // Each session's head is chained from its own events.
    expect(a!.head.hash).not.toBe(c!.head.hash);
  });

  it('sends as soon as max requests wait', async () => {
    const { manager, statements } = fakeManager();
    const batcher = new TransitionBatcher(manager, KEY, { max: 2, waitMs: 60_000 });
    const results = await Promise.all([batcher.apply(request('s1')), batcher.apply(request('s2'))]);
    expect(results.every((r) => r !== null)).toBe(true);
    expect(statements).toEqual([{ batch: true, ids: ['s1', 's2'] }]);
  });

  it('sends after waitMs when fewer than max wait, and a lone request as the single statement', async () => {
    const { manager, statements } = fakeManager();
    const batcher = new TransitionBatcher(manager, KEY, { max: 8, waitMs: 1 });
    expect(await batcher.apply(request('s1'))).not.toBeNull();
    expect(statements).toEqual([{ batch: false, ids: ['s1'] }]);
  });

  it('runs every request again alone when the batch fails, so only the failing one gets the error', async () => {
    const violation = Object.assign(new Error('duplicate key value violates unique constraint "uq_sessions_one_controller"'), { code: '23505' });
    const { manager, statements } = fakeManager({ failBatch: violation, failAlone: { s2: violation }, fenced: ['s3'] });
    const batcher = new TransitionBatcher(manager, KEY, { max: 8, waitMs: 60_000 });
    const pending = ['s1', 's2', 's3'].map((id) => batcher.apply(request(id)).then((r) => ({ r }), (e: unknown) => ({ e })));
    batcher.flush();
    const [a, b, c] = await Promise.all(pending);
    expect(a).toEqual({ r: expect.objectContaining({ version: 2 }) });
    expect(b).toEqual({ e: violation });
    expect(c).toEqual({ r: null });
    expect(statements[0]).toEqual({ batch: true, ids: ['s1', 's2', 's3'] });
    expect(statements.slice(1).map((s) => s.batch)).toEqual([false, false, false]);
  });

  it('sends alone at once what it cannot batch, a second request for a waiting session, and everything with max 1', async () => {
    const { manager, statements } = fakeManager();
    const batcher = new TransitionBatcher(manager, KEY, { max: 8, waitMs: 60_000 });
    const first = batcher.apply(request('s1'));
    await batcher.apply(request('s1', { expectedVersion: 2, from: 'pushing_settings', steps: [{ to: 'awaiting_consent' }] }));
    await batcher.apply(request('s2', { also: [{ sql: 'UPDATE t SET a = 1 FROM s', params: [] }] }));
    await batcher.apply(request('s3', { known: undefined }));
    // The request without a known head takes the general path: several statements, none batched.
    expect(statements.some((s) => s.batch)).toBe(false);
    expect(statements.map((s) => s.ids[0])).toEqual(expect.arrayContaining(['s1', 's2', 's3']));
    batcher.flush();
    await first;
    await new TransitionBatcher(manager, KEY, { max: 1, waitMs: 60_000 }).apply(request('s4'));
    expect(statements.some((s) => s.batch)).toBe(false);
    expect(statements.at(-1)).toEqual({ batch: false, ids: ['s4'] });
  });

  it('batches extra writes that have a batched form', () => {
    expect(isBatchable(request('s1', { also: [{ sql: 'x', params: [1], batched: { sql: 'y', types: ['int'] } }] }))).toBe(true);
    expect(isBatchable(request('s1', { also: [{ sql: 'x', params: [1] }] }))).toBe(false);
    expect(isBatchable(request('s1', { enqueue: [{ queue: 'q', name: 'n', data: {} } as never] }))).toBe(false);
    expect(isBatchable(request('s1', { known: undefined }))).toBe(false);
  });
});
