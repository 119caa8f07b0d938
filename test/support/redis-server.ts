import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import IORedis from 'ioredis';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** A private redis-server on its own port, which a test may kill and restart (empty). */
export class PrivateRedis {
  private proc: ChildProcess | null = null;
  private readonly dir = mkdtempSync(join(tmpdir(), 'rcflow-redis-'));

  private constructor(
    readonly port: number,
    private readonly policy: string,
    private readonly appendonly: boolean,
  ) {}

  /** `appendonly`: with the append-only file (in its own directory, removed by `stop`). */
  static async start(policy = 'noeviction', opts: { appendonly?: boolean } = {}): Promise<PrivateRedis> {
    const r = new PrivateRedis(await freePort(), policy, opts.appendonly ?? false);
    await r.startProcess();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async startProcess(): Promise<void> {
    this.proc = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        this.appendonly ? 'yes' : 'no',
        '--dir',
        this.dir,
        '--maxmemory-policy',
        this.policy,
        '--maxmemory',
        '512mb',
      ],
      { stdio: 'ignore' },
    );
    for (let i = 0; i < 100; i++) {
      const c = new IORedis({ port: this.port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      c.on('error', () => undefined);
      try {
        await c.connect();
        await c.ping();
        c.disconnect();
        return;
      } catch {
        c.disconnect();
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw new Error(`redis-server did not start on port ${this.port}`);
  }

  get running(): boolean {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Starts Redis again (empty) if a test killed it and failed before restarting it. */
  async ensureRunning(): Promise<void> {
    if (!this.running) await this.startProcess();
  }

  /** SIGKILL: whatever Redis held is gone. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (p?.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
    this.proc = null;
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
