import { expect } from '@jest/globals';
import type { EntityManager } from 'typeorm';
import { TransitionBatcher } from './transition-batcher';
import type { SessionSnapshot, TransitionRequest } from './transition';

const KEY = 'k'.repeat(40);
const HEAD = { seq: 1, hash: '0'.repeat(64) };

const request = (sessionId: string, extra: Partial<TransitionRequest> = {}, session: Partial<SessionSnapshot> = {}): TransitionRequest => ({
  session: {
    id: sessionId,
    state: 'eligible',
    version: 1,
    head: HEAD,
    deviceId: `device-${sessionId}`,
    viewerId: 'viewer',
    ticketRef: null,
    ...session,
  },
  actor: { id: null, kind: 'system' },
  steps: [{ to: 'pushing_settings' }],
  ...extra,
});

/**
 * A database stand-in for the transition statement (its first parameter: the session ids): a
 * statement of several sessions is a batch. It answers the sessions not fenced out, and may be told
 * to fail a batch or a given session's statement of its own.
 */
function fakeManager(opts: { fenced?: string[]; failBatch?: Error; failAlone?: Record<string, Error> } = {}) {
  const statements: { batch: boolean; ids: string[] }[] = [];
  const manager = {
    async query(_text: string, values: unknown[]) {
      const ids = values[0] as string[];
      const batch = ids.length > 1;
      statements.push({ batch, ids });
      if (batch && opts.failBatch) throw opts.failBatch;
      const alone = batch ? undefined : opts.failAlone?.[ids[0]];
      if (alone) throw alone;
      return ids.filter((i) => !opts.fenced?.includes(i)).map((i) => ({ id: i, version: 2, ok: 0 }));
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
    const violation = Object.assign(new Error('duplicate key value violates unique constraint "uq_sessions_one_controller"'), {
      code: '23505',
    });
    const { manager, statements } = fakeManager({ failBatch: violation, failAlone: { s2: violation }, fenced: ['s3'] });
    const batcher = new TransitionBatcher(manager, KEY, { max: 8, waitMs: 60_000 });
    const pending = ['s1', 's2', 's3'].map((id) =>
      batcher.apply(request(id)).then(
        (r) => ({ r }),
        (e: unknown) => ({ e }),
      ),
    );
    batcher.flush();
    const [a, b, c] = await Promise.all(pending);
    expect(a).toEqual({ r: expect.objectContaining({ version: 2 }) });
    expect(b).toEqual({ e: violation });
    expect(c).toEqual({ r: null });
    expect(statements[0]).toEqual({ batch: true, ids: ['s1', 's2', 's3'] });
    expect(statements.slice(1).map((s) => s.batch)).toEqual([false, false, false]);
  });

  it('sends alone at once a second request for a waiting session, and everything with max 1', async () => {
    const { manager, statements } = fakeManager();
    const batcher = new TransitionBatcher(manager, KEY, { max: 8, waitMs: 60_000 });
    const first = batcher.apply(request('s1'));
    await batcher.apply(request('s1', { steps: [{ to: 'awaiting_consent' }] }, { state: 'pushing_settings', version: 2 }));
    expect(statements).toEqual([{ batch: false, ids: ['s1'] }]);
    batcher.flush();
    await first;
    expect(statements).toEqual([
      { batch: false, ids: ['s1'] },
      { batch: false, ids: ['s1'] },
    ]);
    await new TransitionBatcher(manager, KEY, { max: 1, waitMs: 60_000 }).apply(request('s4'));
    expect(statements.at(-1)).toEqual({ batch: false, ids: ['s4'] });
  });

  it('checks every step against the lifecycle before sending anything', async () => {
    const { manager, statements } = fakeManager();
    const batcher = new TransitionBatcher(manager, KEY, { max: 1, waitMs: 60_000 });
    await expect(batcher.apply(request('s1', { steps: [{ to: 'active' }] }))).rejects.toThrow(
      /illegal session transition eligible → active/,
    );
    expect(statements).toEqual([]);
  });
});
