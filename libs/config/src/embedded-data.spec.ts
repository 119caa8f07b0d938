import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { restrictEmbeddedData } from './bootstrap';

const mode = (p: string) => statSync(p).mode & 0o777;
/** The process' umask, read by setting it (the argument-less call is deprecated) and putting it back. */
const currentUmask = () => {
  const m = process.umask(0o022);
  process.umask(m);
  return m;
};

describe('restrictEmbeddedData', () => {
  let root: string;
  let umask: number;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'rcflow-embedded-'));
    umask = currentUmask();
  });
  afterEach(() => {
    process.umask(umask);
    rmSync(root, { recursive: true, force: true });
  });

  it('makes the data directory 0700 and every file in it 0600, as PGlite leaves them 0666', () => {
    const state = join(root, '.rcflow');
    const data = join(state, 'pglite');
    mkdirSync(join(data, 'base', '1'), { recursive: true, mode: 0o777 });
    chmodSync(state, 0o755);
    chmodSync(join(data, 'base'), 0o777);
    writeFileSync(join(data, 'PG_VERSION'), '17', { mode: 0o666 });
    writeFileSync(join(data, 'base', '1', '1259'), 'x', { mode: 0o666 });
    chmodSync(join(data, 'base', '1', '1259'), 0o666);
    const outside = join(root, 'outside');
    writeFileSync(outside, 'not ours', { mode: 0o644 });
    symlinkSync(outside, join(data, 'link'));

    restrictEmbeddedData(data);

    expect([state, data, join(data, 'base'), join(data, 'base', '1')].map(mode)).toEqual([0o700, 0o700, 0o700, 0o700]);
    expect([join(data, 'PG_VERSION'), join(data, 'base', '1', '1259')].map(mode)).toEqual([0o600, 0o600]);
    expect(mode(outside)).toBe(0o644); // a link is not followed
    expect(currentUmask()).toBe(0o077);
  });

  it('creates a missing data directory 0700 and leaves a parent not named .rcflow as it is', () => {
    chmodSync(root, 0o755);
    restrictEmbeddedData(join(root, 'pglite'));
    expect(mode(join(root, 'pglite'))).toBe(0o700);
    expect(mode(root)).toBe(0o755);
  });

  it('does nothing for the in-memory database', () => {
    process.umask(0o022);
    restrictEmbeddedData('memory');
    expect(currentUmask()).toBe(0o022);
  });
});
