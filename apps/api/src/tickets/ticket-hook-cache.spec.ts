import { TtlLru } from './ticket-hook-cache';

describe('TtlLru', () => {
  let clock = 0;
  const now = () => clock;
  beforeEach(() => (clock = 1000));

  it('answers an entry until its time is up, then forgets it', () => {
    const cache = new TtlLru<string, number>(2000, 10, now);
    cache.set('a', 1);
    clock += 1999;
    expect(cache.get('a')).toBe(1);
    clock += 1;
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('keeps at most maxSize entries, dropping the least recently used', () => {
    const cache = new TtlLru<string, number>(2000, 3, now);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('c', 3);
    expect(cache.get('a')).toBe(1); // a is now the most recently used; b the least
    cache.set('d', 4);
    expect(cache.size).toBe(3);
    expect(['a', 'b', 'c', 'd'].map((k) => cache.get(k))).toEqual([1, undefined, 3, 4]);
    for (let i = 0; i < 100; i++) cache.set(`x${i}`, i);
    expect(cache.size).toBe(3);
  });

  it('shares one load between concurrent misses and keeps its value', async () => {
    const cache = new TtlLru<string, string>(2000, 10, now);
    let loads = 0;
    let finish: (v: string) => void = () => undefined;
    const load = () => {
      loads++;
      return new Promise<string>((resolve) => (finish = resolve));
    };
    const both = Promise.all([cache.getOrLoad('k', load), cache.getOrLoad('k', load)]);
    finish('v');
    expect(await both).toEqual(['v', 'v']);
    expect(loads).toBe(1);
    expect(await cache.getOrLoad('k', load)).toBe('v');
    expect(loads).toBe(1);
    clock += 2000;
    const again = cache.getOrLoad('k', load);
    finish('w');
    expect(await again).toBe('w');
    expect(loads).toBe(2);
  });

  it('keeps nothing from a load the key was dropped during, and nothing from a failed load', async () => {
    const cache = new TtlLru<string, string>(2000, 10, now);
    let finish: (v: string) => void = () => undefined;
    const pending = cache.getOrLoad('k', () => new Promise<string>((resolve) => (finish = resolve)));
    cache.delete('k');
    finish('stale');
    expect(await pending).toBe('stale');
    expect(cache.get('k')).toBeUndefined();

    await expect(cache.getOrLoad('k', () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(await cache.getOrLoad('k', async () => 'fresh')).toBe('fresh');
  });
});
