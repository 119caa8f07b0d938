import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const services = resolve(__dirname, '../../scripts/services.sh');

/**
 * `npm run demo` rebuilds only when a source changed (scripts/services.sh build_if_changed), so a
 * restart takes seconds. Run against a scratch project whose "build" counts its runs.
 */
describe('the demo script builds only when sources changed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rcflow-build-'));
  const builds = join(dir, 'builds');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  beforeAll(() => {
    for (const d of ['apps/api/src', 'libs/x/src']) mkdirSync(join(dir, d), { recursive: true });
    writeFileSync(join(dir, 'apps/api/src/main.ts'), 'export const a = 1;\n');
    writeFileSync(join(dir, 'libs/x/src/index.ts'), 'export const x = 1;\n');
    for (const f of ['package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) writeFileSync(join(dir, f), '{}\n');
    // What `npm run build` does here: start dist/ afresh (as the real build does) and count.
    const build = `rm -rf dist && mkdir dist && echo built >> ${builds}`;
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'scratch', private: true, scripts: { build } }));
  });

  const buildIfChanged = (): string =>
    execFileSync('bash', ['-c', `source ${services} && build_if_changed 2>&1`], {
      cwd: dir,
      env: { ...process.env, RCFLOW_STATE_DIR: join(dir, '.rcflow') },
      encoding: 'utf8',
    });
  const buildCount = (): number => readFileSync(builds, 'utf8').split('\n').filter(Boolean).length;

  it('builds the first time, then not again while nothing changed', () => {
    expect(buildIfChanged()).toContain('building');
    expect(buildCount()).toBe(1);
    expect(buildIfChanged()).toContain('up to date');
    expect(buildCount()).toBe(1);
  });

  it('builds again after a source or the lockfile changes, or when dist/ is gone', () => {
    writeFileSync(join(dir, 'libs/x/src/index.ts'), 'export const x = 2;\n');
    buildIfChanged();
    expect(buildCount()).toBe(2);
    writeFileSync(join(dir, 'package-lock.json'), '{"lockfileVersion":3}\n');
    buildIfChanged();
    expect(buildCount()).toBe(3);
    rmSync(join(dir, 'dist'), { recursive: true });
    buildIfChanged();
    expect(buildCount()).toBe(4);
    expect(buildIfChanged()).toContain('up to date');
    expect(buildCount()).toBe(4);
  });
});
