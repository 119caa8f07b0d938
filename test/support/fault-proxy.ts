import { AddressInfo, Server, Socket, createConnection, createServer } from 'node:net';

/**
 * A TCP proxy that puts network faults between rcflow's processes and Redis or PostgreSQL, in the
 * manner of Toxiproxy: added latency (with jitter), a bandwidth limit, connections reset, black
 * holes (bytes accepted and never delivered, no close), half-open connections (the far side gone
 * without a word) and refused connections. Faults apply to connections already open and to new ones.
 *
 *   const proxy = await FaultProxy.start(6379);        // rcflow connects to proxy.port
 *   proxy.set({ latencyMs: 200 });                      // every byte 200 ms late, in order
 *   proxy.set({ mode: 'blackhole' }); … proxy.clear();  // 30 s of silence, then back
 */
export interface Faults {
  /** Delay added to every chunk, each direction; order is kept. */
  latencyMs: number;
  /** Up to this much more, at random per chunk (still in order). */
  jitterMs: number;
  /** Bytes per second per direction per connection; 0 = unlimited. */
  bytesPerSecond: number;
  /**
   * pass: deliver (with the delays above); partition: hold every byte both ways until the mode
   * changes, then deliver them in order (a network partition that heals: TCP retransmits what was
   * sent); blackhole: swallow every byte both ways and keep the sockets open (Toxiproxy's
   * `timeout` toxic: a middlebox that loses data); refuse: reset new connections at once (open
   * ones carry on).
   */
  mode: 'pass' | 'partition' | 'blackhole' | 'refuse';
}

const NONE: Faults = { latencyMs: 0, jitterMs: 0, bytesPerSecond: 0, mode: 'pass' };
/** Bytes queued in one direction before the sending side is paused (backpressure). */
const HIGH_WATER = 1 << 20;

/** One direction of one connection: chunks delivered in order, each no earlier than its due time. */
class Lane {
  private readonly queue: { chunk: Buffer; due: number }[] = [];
  private queued = 0;
  private lastDue = 0;
  private timer: NodeJS.Timeout | null = null;
  private onDrained: (() => void) | null = null;

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly faults: () => Faults,
    private readonly count: (bytes: number) => void,
  ) {
    from.on('data', (chunk: Buffer) => this.accept(chunk));
  }

  private accept(chunk: Buffer): void {
    const f = this.faults();
    if (f.mode === 'blackhole') return;
    const now = Date.now();
    const delay = f.latencyMs + (f.jitterMs > 0 ? Math.random() * f.jitterMs : 0);
    const sendTime = f.bytesPerSecond > 0 ? (chunk.length * 1000) / f.bytesPerSecond : 0;
    // In order: never before the chunk ahead of it; the bandwidth limit spaces them further.
    const due = Math.max(now + delay, this.lastDue) + sendTime;
    this.lastDue = due;
    if (due <= now && this.queue.length === 0 && f.mode !== 'partition') return this.deliver(chunk);
    this.queue.push({ chunk, due });
    this.queued += chunk.length;
    if (this.queued > HIGH_WATER) this.from.pause();
    this.schedule();
  }

  /** Delivers what a partition held, once it heals. */
  kick(): void {
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.queue.length === 0 || this.faults().mode === 'partition') return;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        const now = Date.now();
        while (this.queue.length > 0 && this.queue[0].due <= now && this.faults().mode !== 'partition') {
          const { chunk } = this.queue.shift()!;
          this.queued -= chunk.length;
          // A black hole set after the chunk was queued swallows it too.
          if (this.faults().mode !== 'blackhole') this.deliver(chunk);
        }
        if (this.queued <= HIGH_WATER && this.from.isPaused()) this.from.resume();
        if (this.queue.length === 0) this.onDrained?.();
        this.schedule();
      },
      Math.max(0, this.queue[0].due - Date.now()),
    );
  }

  private deliver(chunk: Buffer): void {
    if (this.to.destroyed) return;
    this.to.write(chunk);
    this.count(chunk.length);
  }

  /** Calls `done` once every chunk accepted so far is delivered (at once when none waits). */
  whenDrained(done: () => void): void {
    if (this.queue.length === 0) done();
    else this.onDrained = done;
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
  }
}

interface Link {
  client: Socket;
  upstream: Socket;
  lanes: Lane[];
}

export class FaultProxy {
  private faults: Faults = { ...NONE };
  private readonly links = new Set<Link>();
  /** Connections accepted, and bytes delivered each way, since start. */
  readonly stats = { connections: 0, refused: 0, toUpstream: 0, toClient: 0 };

  private constructor(
    private readonly server: Server,
    private readonly upstream: { host: string; port: number },
  ) {}

  static async start(upstreamPort: number, upstreamHost = '127.0.0.1'): Promise<FaultProxy> {
    const server = createServer();
    const proxy = new FaultProxy(server, { host: upstreamHost, port: upstreamPort });
    server.on('connection', (client) => proxy.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** The number of connections open through the proxy now. */
  get open(): number {
    return this.links.size;
  }

  /** Changes some faults, keeping the others; applies at once to open connections too. */
  set(faults: Partial<Faults>): void {
    this.faults = { ...this.faults, ...faults };
    for (const link of this.links) for (const lane of link.lanes) lane.kick();
  }

  /** Back to a clean network (what a partition held is delivered now). */
  clear(): void {
    this.set(NONE);
  }

  /** Resets (RST) every open connection on both sides, as a restarted router or a killed peer would. */
  resetAll(): void {
    for (const link of [...this.links]) this.drop(link, 'reset');
  }

  /**
   * Makes every open connection half-open: the upstream side is gone (reset) but the client side
   * is never told — its writes are accepted and swallowed, nothing comes back, no FIN, no RST.
   * Only a client-side timeout or keep-alive finds out.
   */
  halfOpenAll(): void {
    for (const link of [...this.links]) {
      for (const lane of link.lanes) lane.stop();
      link.client.removeAllListeners('data');
      link.client.removeAllListeners('close');
      link.client.on('data', () => undefined);
      link.client.on('close', () => this.links.delete(link));
      link.upstream.removeAllListeners('close');
      link.upstream.on('error', () => undefined);
      link.upstream.resetAndDestroy();
    }
  }

  async stop(): Promise<void> {
    this.resetAll();
    for (const link of [...this.links]) link.client.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    client.on('error', () => undefined);
    if (this.faults.mode === 'refuse') {
      this.stats.refused++;
      client.resetAndDestroy();
      return;
    }
    this.stats.connections++;
    client.setNoDelay(true);
    const upstream = createConnection(this.upstream);
    upstream.setNoDelay(true);
    upstream.on('error', () => undefined);
    const faults = () => this.faults;
    const link: Link = {
      client,
      upstream,
      lanes: [
        new Lane(client, upstream, faults, (n) => (this.stats.toUpstream += n)),
        new Lane(upstream, client, faults, (n) => (this.stats.toClient += n)),
      ],
    };
    this.links.add(link);
    // Either side closing closes the other once what it sent is delivered, as a plain TCP path
    // would; under a black hole nothing reaches the other side, not even the close.
    const [up, down] = link.lanes;
    client.on('close', () => up.whenDrained(() => this.drop(link, 'end')));
    upstream.on('close', () => {
      if (this.faults.mode !== 'blackhole') down.whenDrained(() => this.drop(link, 'end'));
    });
  }

  private drop(link: Link, how: 'end' | 'reset'): void {
    if (!this.links.delete(link)) return;
    for (const lane of link.lanes) lane.stop();
    for (const socket of [link.client, link.upstream]) {
      if (socket.destroyed) continue;
      if (how === 'reset') socket.resetAndDestroy();
      else socket.destroy();
    }
  }
}
