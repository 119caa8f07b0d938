import { GENESIS_HASH } from './audit-chain';
import { AuditProblem, ChainWalk, StreamHead } from './audit-chain-walk';

const h = (n: number) => String(n).padStart(64, 'a');
const ALTERED = 'hash does not match the stored content: the event was altered';
const LINK = 'prev_hash does not match the previous event: an event was removed, inserted or reordered';

interface Ev {
  stream: string;
  seq: number | null;
  prev: string | null;
  hash: string | null;
  ok?: boolean;
}

/** A well-chained stream of `n` events whose hashes are h(base + seq). */
const stream = (name: string, n: number, base = 0): Ev[] =>
  Array.from({ length: n }, (_, i) => ({ stream: name, seq: i + 1, prev: i === 0 ? GENESIS_HASH : h(base + i), hash: h(base + i + 1) }));

function walk(events: Ev[], heads: Record<string, StreamHead>, maxProblems = 100): { problems: AuditProblem[]; walk: ChainWalk } {
  const w = new ChainWalk(maxProblems);
  for (const e of events) w.event(e.stream, e.seq, e.prev, e.hash, () => `id:${e.stream}:${e.seq}`, e.ok ?? true, heads[e.stream] ?? null);
  w.endStream();
  return { problems: w.problems, walk: w };
}

describe('ChainWalk', () => {
  const headsOf = (...streams: Ev[][]) =>
    Object.fromEntries(streams.map((s) => [s[0].stream, { seq: s.length, hash: s[s.length - 1].hash }]));

  it('accepts well-chained streams and counts events and streams', () => {
    const a = stream('a', 3);
    const b = stream('b', 2, 10);
    const r = walk([...a, ...b], headsOf(a, b));
    expect(r.problems).toEqual([]);
    expect(r.walk.events).toBe(5);
    expect(r.walk.streams).toBe(2);
  });

  it('ends no stream twice and reports nothing when nothing was walked', () => {
    const w = new ChainWalk(10);
    w.endStream();
    w.endStream();
    expect(w.problems).toEqual([]);
    expect(w.streams).toBe(0);
  });

  it('catches an event signed correctly but linked to another history (prev_hash alone is wrong)', () => {
    const a = stream('a', 3);
    a[2] = { ...a[2], prev: h(99) };
    expect(walk(a, headsOf(a)).problems).toEqual([{ stream: 'a', seq: 3, eventId: 'id:a:3', problem: LINK }]);
    const b = stream('b', 2);
    b[0] = { ...b[0], prev: h(7) };
    expect(walk(b, headsOf(b)).problems).toEqual([{ stream: 'b', seq: 1, eventId: 'id:b:1', problem: LINK }]);
  });

  it('starts each stream from the genesis hash, not from the previous stream', () => {
    const a = stream('a', 2);
    const b = stream('b', 2, 10);
    b[0] = { ...b[0], prev: a[1].hash };
    expect(walk([...a, ...b], headsOf(a, b)).problems).toEqual([{ stream: 'b', seq: 1, eventId: 'id:b:1', problem: LINK }]);
  });

  it('catches a gap or a repeat in the sequence', () => {
    const a = stream('a', 3);
    a[2] = { ...a[2], seq: 4 };
    expect(walk(a, { a: { seq: 4, hash: a[2].hash } }).problems).toEqual([
      { stream: 'a', seq: 4, eventId: 'id:a:4', problem: 'expected seq 3, found 4: events missing or reordered' },
    ]);
    const b = stream('b', 2);
    const c = walk([b[0], { ...b[0] }], { b: { seq: 1, hash: b[0].hash } });
    expect(c.problems.map((p) => p.problem)).toEqual(['expected seq 2, found 1: events missing or reordered', LINK]);
  });

  it('restarts the count at 1 in each stream and reads a null seq as a gap', () => {
    const a = stream('a', 2);
    const b = [{ ...stream('b', 1, 10)[0], seq: null }];
    expect(walk([...a, ...b], { ...headsOf(a), b: { seq: null, hash: b[0].hash } }).problems).toEqual([
      { stream: 'b', seq: null, eventId: 'id:b:null', problem: 'expected seq 1, found null: events missing or reordered' },
    ]);
  });

  it('names an altered event', () => {
    const a = stream('a', 2);
    a[1] = { ...a[1], ok: false };
    expect(walk(a, headsOf(a)).problems).toEqual([{ stream: 'a', seq: 2, eventId: 'id:a:2', problem: ALTERED }]);
  });

  it('compares where each stream ends with its head: missing head, other seq, other hash', () => {
    const a = stream('a', 2);
    expect(walk(a, {}).problems).toEqual([{ stream: 'a', seq: 2, eventId: null, problem: 'stream has events but no head' }]);
    const moved = 'last event is seq 2 but the head records seq 3: events were removed or added';
    expect(walk(a, { a: { seq: 3, hash: a[1].hash } }).problems).toEqual([{ stream: 'a', seq: 2, eventId: null, problem: moved }]);
    expect(walk(a, { a: { seq: 2, hash: h(50) } }).problems).toEqual([
      { stream: 'a', seq: 2, eventId: null, problem: 'last event is seq 2 but the head records seq 2: events were removed or added' },
    ]);
  });

  it('reads the head given with the first event of a stream only', () => {
    const a = stream('a', 2);
    const w = new ChainWalk(10);
    w.event('a', 1, a[0].prev, a[0].hash, () => 'x', true, { seq: 2, hash: a[1].hash });
    w.event('a', 2, a[1].prev, a[1].hash, () => 'y', true, null);
    w.endStream();
    expect(w.problems).toEqual([]);
  });

  it('keeps at most maxProblems, the first ones, and asks for event ids only to name a problem', () => {
    const a = stream('a', 4).map((e) => ({ ...e, ok: false }));
    expect(walk(a, headsOf(a), 2).problems).toEqual([
      { stream: 'a', seq: 1, eventId: 'id:a:1', problem: ALTERED },
      { stream: 'a', seq: 2, eventId: 'id:a:2', problem: ALTERED },
    ]);
    const w = new ChainWalk(5);
    const id = jest.fn(() => 'x');
    for (const e of stream('b', 3)) w.event(e.stream, e.seq, e.prev, e.hash, id, true, { seq: 3, hash: h(3) });
    w.endStream();
    expect(id).not.toHaveBeenCalled();
    expect(w.problems).toEqual([]);
  });
});
