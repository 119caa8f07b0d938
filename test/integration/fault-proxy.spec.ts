import { AddressInfo, Server, Socket, createConnection, createServer } from 'node:net';
import IORedis from 'ioredis';
import { SHARED_REDIS_URL } from '../support/env';
import { FaultProxy } from '../support/fault-proxy';

/** The fault proxy itself, over real sockets: an echo server and the test run's Redis behind it. */
describe('FaultProxy', () => {
  let echo: Server;
  const upstreamSockets = new Set<Socket>();
  let proxy: FaultProxy;

  beforeAll(async () => {
    echo = createServer((socket) => {
      upstreamSockets.add(socket);
      socket.on('close', () => upstreamSockets.delete(socket));
      socket.on('error', () => undefined);
      socket.pipe(socket);
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    for (const s of upstreamSockets) s.destroy();
    await new Promise((resolve) => echo.close(resolve));
  });
  beforeEach(async () => {
    proxy = await FaultProxy.start((echo.address() as AddressInfo).port);
  });
  afterEach(() => proxy.stop());

  const connect = async (): Promise<Socket & { received: () => string }> => {
    const socket = createConnection({ port: proxy.port, host: '127.0.0.1' });
    let got = '';
    socket.on('data', (d) => (got += d.toString()));
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    return Object.assign(socket, { received: () => got });
  };
  const until = async (what: () => boolean, ms = 5000): Promise<void> => {
    const end = Date.now() + ms;
    while (!what()) {
      if (Date.now() > end) throw new Error('condition not met in time');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('passes bytes both ways unchanged and in order, and counts them', async () => {
    const socket = await connect();
    const message = Array.from({ length: 500 }, (_, i) => `line ${i}\n`).join('');
    for (const part of message.match(/[\s\S]{1,97}/g)!) socket.write(part);
    await until(() => socket.received().length === message.length);
    expect(socket.received()).toBe(message);
    expect(proxy.stats).toMatchObject({ connections: 1, toUpstream: message.length, toClient: message.length });
    socket.destroy();
  });

  it('adds latency to each direction without reordering', async () => {
    const socket = await connect();
    proxy.set({ latencyMs: 150, jitterMs: 50 });
    const started = Date.now();
    for (let i = 0; i < 20; i++) socket.write(`${i},`);
    const expected = Array.from({ length: 20 }, (_, i) => `${i},`).join('');
    await until(() => socket.received() === expected);
    // There and back: at least twice the latency (a lower bound, never a speed claim).
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    socket.destroy();
  });

  it('limits bandwidth', async () => {
    const socket = await connect();
    proxy.set({ bytesPerSecond: 40_000 });
    const started = Date.now();
    socket.write(Buffer.alloc(20_000, 'x'));
    await until(() => socket.received().length === 20_000);
    // 20 kB each way at 40 kB/s: half a second at least.
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    socket.destroy();
  });

  it('black-holes: bytes vanish both ways, the connection stays open, and traffic flows again after', async () => {
    const socket = await connect();
    proxy.set({ mode: 'blackhole' });
    socket.write('lost');
    await wait(200);
    expect(socket.received()).toBe('');
    expect(socket.destroyed).toBe(false);
    proxy.clear();
    socket.write('back');
    await until(() => socket.received() === 'back');
    socket.destroy();
  });

  it('partitions: bytes are held both ways, then delivered in order when the network heals', async () => {
    const socket = await connect();
    proxy.set({ mode: 'partition' });
    socket.write('held ');
    socket.write('in order');
    await wait(200);
    expect(socket.received()).toBe('');
    proxy.clear();
    await until(() => socket.received() === 'held in order');
    socket.destroy();
  });

  it('resets every open connection', async () => {
    const socket = await connect();
    const errored = new Promise<NodeJS.ErrnoException>((resolve) => socket.once('error', resolve));
    await until(() => upstreamSockets.size === 1);
    proxy.resetAll();
    expect((await errored).code).toBe('ECONNRESET');
    await until(() => upstreamSockets.size === 0);
  });

  it('leaves connections half-open: the server side is gone, the client is never told', async () => {
    const socket = await connect();
    await until(() => upstreamSockets.size === 1);
    let closed = false;
    socket.on('close', () => (closed = true));
    proxy.halfOpenAll();
    await until(() => upstreamSockets.size === 0);
    socket.write('anyone there?');
    await wait(200);
    expect(closed).toBe(false);
    expect(socket.received()).toBe('');
    socket.destroy();
  });

  it('refuses new connections while open ones carry on', async () => {
    const open = await connect();
    proxy.set({ mode: 'refuse' });
    const refused = createConnection({ port: proxy.port, host: '127.0.0.1' });
    const failure = await new Promise<string>((resolve) => {
      refused.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      refused.once('close', () => resolve('closed'));
    });
    expect(['ECONNRESET', 'closed']).toContain(failure);
    expect(proxy.stats.refused).toBe(1);
    open.write('still here');
    await until(() => open.received() === 'still here');
    open.destroy();
  });

  it('carries a real Redis client, and a black hole turns its commands into timeouts', async () => {
    const redisPort = Number(new URL(SHARED_REDIS_URL).port || 6379);
    const redisProxy = await FaultProxy.start(redisPort);
    const redis = new IORedis({ port: redisProxy.port, host: '127.0.0.1', commandTimeout: 300, maxRetriesPerRequest: 0 });
    try {
      expect(await redis.ping()).toBe('PONG');
      redisProxy.set({ mode: 'blackhole' });
      await expect(redis.ping()).rejects.toThrow(/timed out/i);
    } finally {
      redis.disconnect();
      await redisProxy.stop();
    }
  });
});
