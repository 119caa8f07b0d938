import { IntakeBatcher } from './intake-batcher';
import type { IntakeOutcome, IntakeRow } from './intake-statement';

const row = (id: string) => ({ id }) as IntakeRow;
const created: IntakeOutcome = { created: true, collections: [], viewerKind: null };

/** A runner whose statements the test completes by hand, recording the ids each one carried. */
function manualRunner() {
  const calls: { ids: string[]; finish(fail?: Error): void }[] = [];
  const run = (rows: IntakeRow[]) =>
    new Promise<Map<string, IntakeOutcome>>((resolve, reject) => {
      calls.push({
        ids: rows.map((r) => r.id),
        finish: (fail) => (fail ? reject(fail) : resolve(new Map(rows.map((r) => [r.id, created])))),
      });
    });
  return { run, calls };
}
const turn = () => new Promise((r) => setImmediate(r));

describe('IntakeBatcher', () => {
  it('sends what arrives in one turn together, and what arrives while statements are out when one returns', async () => {
    const { run, calls } = manualRunner();
    const batcher = new IntakeBatcher(run, 1, 100);
    const first = ['a', 'b'].map((id) => batcher.submit(row(id)));
    await turn();
    expect(calls.map((c) => c.ids)).toEqual([['a', 'b']]);
    const second = ['c', 'd', 'e'].map((id) => batcher.submit(row(id)));
    await turn();
    expect(calls).toHaveLength(1); // the only slot is taken
    calls[0].finish();
    await expect(Promise.all(first)).resolves.toEqual([created, created]);
    await turn();
    expect(calls.map((c) => c.ids)).toEqual([
      ['a', 'b'],
      ['c', 'd', 'e'],
    ]);
    calls[1].finish();
    await expect(Promise.all(second)).resolves.toHaveLength(3);
  });

  it('caps a statement at maxBatch requests and keeps maxInFlight statements out', async () => {
    const { run, calls } = manualRunner();
    const batcher = new IntakeBatcher(run, 2, 2);
    const all = ['a', 'b', 'c', 'd', 'e'].map((id) => batcher.submit(row(id)));
    await turn();
    expect(calls.map((c) => c.ids)).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
    calls[0].finish();
    await turn();
    await turn();
    expect(calls.map((c) => c.ids)).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    calls[1].finish();
    calls[2].finish();
    await expect(Promise.all(all)).resolves.toHaveLength(5);
  });

  it('sends each request of a failed statement again alone, so only the one at fault fails', async () => {
    const poison = new Error('invalid byte sequence');
    const run = async (rows: IntakeRow[]) => {
      if (rows.some((r) => r.id === 'bad')) throw poison;
      return new Map(rows.map((r) => [r.id, created]));
    };
    const batcher = new IntakeBatcher(run, 4, 100);
    const results = await Promise.allSettled(['a', 'bad', 'c'].map((id) => batcher.submit(row(id))));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBe(poison);
  });

  it('fails a request the statement did not answer for', async () => {
    const batcher = new IntakeBatcher(async () => new Map(), 1, 10);
    await expect(batcher.submit(row('a'))).rejects.toThrow(/did not answer for session a/);
  });
});
