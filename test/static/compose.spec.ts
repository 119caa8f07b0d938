import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { envSchema, loadConfig } from '../../libs/config/src/config';

/**
 * What can be checked of docker-compose.yml, the Dockerfile and .dockerignore without Docker: the
 * file parses; every command runs a file the build produces; every variable it sets is one rcflow
 * accepts, and with the compose file's defaults the configuration loads as production; the
 * stages and services it names exist; the runtime image runs as an unprivileged user.
 */

const ROOT = join(__dirname, '..', '..');
const read = (f: string) => readFileSync(join(ROOT, f), 'utf8');

interface Service {
  image?: string;
  build?: string | { context?: string; target?: string; dockerfile?: string };
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[] };
  restart?: string;
  volumes?: string[];
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

/** Values a user would give the variables the compose file requires (`${VAR:?…}`). */
const SUPPLIED: Record<string, string> = { AUDIT_HMAC_KEY: 'a'.repeat(64) };

/** Compose's interpolation: ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR}, $$ → $. */
function interpolate(value: string, vars: Record<string, string>): string {
  return value
    .replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}/g, (_m, name: string, _colon: string, op?: string, arg?: string) => {
      const v = vars[name];
      if (v !== undefined && v !== '') return v;
      if (op === '?') throw new Error(`\${${name}} is required: ${arg}`);
      return op === '-' ? (arg ?? '') : '';
    })
    .replace(/\$\$/g, '$');
}

const compose = parse(read('docker-compose.yml'), { merge: true }) as Compose;
const dockerfile = read('Dockerfile');
/** Stages by name, each with its instructions (continuation lines joined). */
const stages = new Map<string, string[]>();
{
  let current: string[] | null = null;
  for (const line of dockerfile.replace(/\\\n/g, ' ').split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const from = /^FROM\s+\S+(?:\s+AS\s+(\S+))?$/i.exec(t);
    if (from) {
      current = [];
      stages.set(from[1] ?? `#${stages.size}`, current);
    } else current?.push(t);
  }
}
const rcflowServices = Object.entries(compose.services).filter(([, s]) => s.build !== undefined || s.image === 'rcflow:local');

const environmentOf = (s: Service): Record<string, string> => {
  if (Array.isArray(s.environment)) {
    return Object.fromEntries(s.environment.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  }
  return Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, v === null ? '' : String(v)]));
};
const words = (c: string | string[] | undefined) => (c === undefined ? [] : Array.isArray(c) ? c : c.split(/\s+/)).join(' ');

/** A path under dist/ the build emits, mapped to the source it is compiled from. */
function sourceOf(distPath: string): string {
  return distPath.replace(/^dist\//, '').replace(/\.js$/, '.ts');
}

describe('docker-compose.yml and the Dockerfile', () => {
  it('parses, and has the services a deployment needs', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['api', 'migrate', 'postgres', 'redis', 'worker']);
  });

  it('runs the rcflow services from the image, with no host directory (nor node_modules) mounted', () => {
    expect(rcflowServices.map(([n]) => n).sort()).toEqual(['api', 'migrate', 'worker']);
    for (const [name, s] of rcflowServices) {
      for (const v of s.volumes ?? []) {
        const source = v.split(':')[0];
        // Named volumes only: no ./, /, ~ (a bind mount of the host).
        expect([name, source]).toEqual([name, expect.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/)]);
        expect(Object.keys(compose.volumes ?? {})).toContain(source);
      }
      expect(JSON.stringify(s)).not.toContain('node_modules');
    }
  });

  it("every rcflow command runs a file the build produces (node dist/… from a source that exists), the image's CMD too", () => {
    const commands = [...rcflowServices.map(([, s]) => words(s.command)), /CMD\s+(.*)$/m.exec(dockerfile)![1]];
    const files = commands.flatMap((c) => [...c.matchAll(/\bnode\s+"?(dist\/[^\s",]+\.js)/g)].map((m) => m[1]));
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const f of files) expect([f, existsSync(join(ROOT, sourceOf(f)))]).toEqual([f, true]);
    // The commands the CLI is asked for exist in its usage text.
    const cli = read('apps/api/src/cli.ts');
    for (const c of commands) {
      for (const m of c.matchAll(/cli\.js\s+([a-z-]+)/g)) expect(cli).toContain(`case '${m[1]}':`);
    }
    // The TypeScript build emits dist/<path>.js for every apps/ and libs/ source (rootDir ".", outDir "dist").
    const ts = JSON.parse(read('tsconfig.json').replace(/\/\/.*$/gm, '')) as { compilerOptions: { rootDir: string; outDir: string } };
    expect(ts.compilerOptions).toMatchObject({ rootDir: '.', outDir: 'dist' });
  });

  it('migrate runs the migrations, then bootstrap-admin, which may have been done before (exit 3) but must not fail otherwise', () => {
    const cmd = words(compose.services.migrate.command);
    expect(cmd).toMatch(/cli\.js migrate && .*cli\.js bootstrap-admin.*\|\| \[ \$\$\? -eq 3 \]/);
    expect(read('apps/api/src/cli.ts')).toMatch(/AdministratorExists[\s\S]{0,400}return 3;/);
  });

  it('sets only variables the configuration accepts, and with its defaults the configuration loads as production', () => {
    const accepted = new Set(Object.keys(envSchema.shape));
    const dockerEnv = [...dockerfile.matchAll(/^ENV\s+([A-Z_][A-Z0-9_]*)=(\S+)/gm)].map((m) => [m[1], m[2]] as const);
    for (const [name, s] of rcflowServices) {
      const env = environmentOf(s);
      for (const key of Object.keys(env)) expect([name, key, accepted.has(key)]).toEqual([name, key, true]);
      for (const [key] of dockerEnv) expect([key, accepted.has(key)]).toEqual([key, true]);
      const resolved = Object.fromEntries([
        ...dockerEnv,
        ...Object.entries(env).map(([k, v]) => [k, interpolate(v, SUPPLIED)] as const),
      ]) as Record<string, string>;
      const config = loadConfig(resolved);
      expect(config.env).toBe('production');
      expect(config.database.url).toMatch(/@postgres:5432\//);
      expect(config.redis).toMatchObject({ url: 'redis://redis:6379', requireNoeviction: true, requireAof: true });
    }
    // Without the audit key it refuses to start at all (compose says what to set).
    expect(() => interpolate(environmentOf(compose.services.api).AUDIT_HMAC_KEY, {})).toThrow(
      /AUDIT_HMAC_KEY\} is required: set AUDIT_HMAC_KEY/,
    );
  });

  it('gives Redis what rcflow requires in production: the append-only file and noeviction', () => {
    const cmd = words(compose.services.redis.command);
    expect(cmd).toMatch(/--appendonly yes/);
    expect(cmd).toMatch(/--maxmemory-policy noeviction/);
  });

  it('refers only to services and stages that exist, and starts the API and workers after migrate has succeeded', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
      for (const d of deps) expect([name, d, d in compose.services && d !== name]).toEqual([name, d, true]);
    }
    for (const name of ['api', 'worker']) {
      expect(compose.services[name].depends_on).toMatchObject({ migrate: { condition: 'service_completed_successfully' } });
      expect(compose.services[name].restart).toMatch(/^(always|unless-stopped|on-failure)/);
    }
    expect(compose.services.migrate.restart).toBe('no');
    for (const [name, s] of rcflowServices) {
      const build = s.build as { context: string; target: string };
      expect([name, build.context, stages.has(build.target)]).toEqual([name, '.', true]);
    }
  });

  it('checks health with node (the slim image has no curl): the API on /health/ready of its port, the worker on its ops port', () => {
    const api = compose.services.api;
    const worker = compose.services.worker;
    expect(words(api.healthcheck?.test)).toContain(`http://127.0.0.1:${environmentOf(api).PORT}/health/ready`);
    expect(words(worker.healthcheck?.test)).toContain(`http://127.0.0.1:${environmentOf(worker).WORKER_HTTP_PORT}/health/ready`);
    for (const s of [api, worker]) expect(words(s.healthcheck?.test)).toMatch(/^CMD node -e /);
    // The worker scales: no fixed container name, no host port.
    expect(worker).not.toHaveProperty('container_name');
    expect(worker).not.toHaveProperty('ports');
  });

  it('builds in two stages: dev dependencies and `npm run build` first, then production dependencies and dist/ only, as a non-root user', () => {
    expect([...stages.keys()]).toEqual(['build', 'runtime']);
    expect([...stages.values()].flat().join('\n')).not.toMatch(/npm ci\b/);
    expect(/^ARG NODE_IMAGE=node:20-slim$/m.test(dockerfile)).toBe(true);
    const build = stages.get('build')!.join('\n');
    expect(build).toMatch(/^RUN npm install --no-audit --no-fund/m);
    expect(build).not.toMatch(/--omit=dev|NODE_ENV=production/);
    expect(build).toMatch(/^RUN npm run build$/m);
    const runtime = stages.get('runtime')!;
    expect(runtime).toContain('ENV NODE_ENV=production');
    expect(runtime.join('\n')).toMatch(/^RUN npm install --omit=dev/m);
    const copies = runtime.filter((l) => /^COPY\b/.test(l));
    expect(copies).toEqual(['COPY package.json package-lock.json ./', 'COPY --from=build /app/dist ./dist']);
    const users = runtime.filter((l) => /^USER\b/.test(l));
    expect(users.at(-1)).toMatch(/^USER (?!root\b|0\b)\S+$/);
    // Nothing runs after USER as root again, and the CMD runs the API.
    expect(runtime.at(-1)).toBe('CMD ["node", "dist/apps/api/src/main.js"]');
  });

  it('.dockerignore keeps the host node_modules and dist/ out of the build context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim());
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.git', '.rcflow']));
  });
});
