import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, configPath, readConfig, removeConfig, writeConfig } from './config';

const KEY = `rcf_00000000-0000-4000-8000-000000000000.${'A'.repeat(43)}`;

describe('the config file', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'rcctl-config-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('lives under XDG_CONFIG_HOME, else ~/.config (a relative XDG_CONFIG_HOME is ignored)', () => {
    expect(configPath({ XDG_CONFIG_HOME: '/x/cfg', HOME: '/home/a' })).toBe('/x/cfg/rcflow/config.json');
    expect(configPath({ HOME: '/home/a' })).toBe('/home/a/.config/rcflow/config.json');
    expect(configPath({ XDG_CONFIG_HOME: 'rel', HOME: '/home/a' })).toBe('/home/a/.config/rcflow/config.json');
    expect(() => configPath({})).toThrow(/HOME/);
  });

  it('is written 0600 in a 0700 directory even under a permissive umask, and read back', () => {
    const path = join(dir, 'home', '.config', 'rcflow', 'config.json');
    const old = process.umask(0);
    try {
      writeConfig(path, { url: 'http://localhost:3000', key: KEY });
    } finally {
      process.umask(old);
    }
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'home', '.config', 'rcflow')).mode & 0o777).toBe(0o700);
    const warnings: string[] = [];
    expect(readConfig(path, (w) => warnings.push(w))).toEqual({ url: 'http://localhost:3000', key: KEY });
    expect(warnings).toEqual([]);
  });

  it('tightens an existing directory and replaces an existing file', () => {
    const rc = join(dir, 'rcflow');
    mkdirSync(rc, { mode: 0o755 });
    const path = join(rc, 'config.json');
    writeFileSync(path, '{}', { mode: 0o644 });
    writeConfig(path, { url: 'https://rc.example', key: KEY });
    expect(statSync(rc).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ url: 'https://rc.example', key: KEY });
  });

  it('warns when the file is readable by others', () => {
    const path = join(dir, 'config.json');
    writeConfig(path, { url: 'http://localhost:3000', key: KEY });
    chmodSync(path, 0o644);
    const warnings: string[] = [];
    readConfig(path, (w) => warnings.push(w));
    expect(warnings).toEqual([expect.stringMatching(/readable by others \(mode 644\); run: chmod 600/)]);
  });

  it('is absent before login and after logout; a file that is not ours is an error', () => {
    const path = join(dir, 'config.json');
    expect(readConfig(path, () => undefined)).toBeNull();
    expect(removeConfig(path)).toBe(false);
    writeFileSync(path, 'not json', { mode: 0o600 });
    expect(() => readConfig(path, () => undefined)).toThrow(ConfigError);
    writeFileSync(path, JSON.stringify({ url: 'http://x', key: 'short' }), { mode: 0o600 });
    expect(() => readConfig(path, () => undefined)).toThrow(/does not hold/);
    expect(removeConfig(path)).toBe(true);
    expect(readConfig(path, () => undefined)).toBeNull();
  });
});
