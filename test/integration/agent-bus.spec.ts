import IORedis, { RedisOptions } from 'ioredis';
import { AgentCommand } from '../../libs/agent-protocol/src';
import { AgentBusScripts, AgentTimeoutError, InboxEntry, RedisAgentLink, agentBusKeys } from '../../libs/agent-link/src';
import { CONFIGMGR_DEFAULT_REMOTE_TOOLS } from '../../libs/domain/src';
import { redisOptionsFromUrl } from '../../libs/jobs/src';
import { queuePrefix } from '../support/env';
import { waitUntil } from '../support/processes';
import { PrivateRedis } from '../support/redis-server';

jest.setTimeout(60_000);

/**
 * The agent bus against a real Redis: the worker's RedisAgentLink on one side, the scripts the
 * API's gateway runs on the other, and an agent played by the test in between.
 */
describe('agent bus (RedisAgentLink and the gateway scripts)', () => {
  let redis: PrivateRedis;
  const clients: IORedis[] = [];
  let prefixNo = 0;
  /** For the test's own look at Redis. */
  let probe: IORedis;

  const client = (options: RedisOptions = {}) => {
    const c = new IORedis({ ...redisOptionsFromUrl(redis.url), maxRetriesPerRequest: 3, ...options });
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  };

  /** Counts the commands a connection sends, by name (as the benchmark's round-trip counter does). */
  const counted = (c: IORedis) => {
    const counts: Record<string, number> = {};
    const send = c.sendCommand.bind(c);
    c.sendCommand = (command: { name: string }, ...rest: unknown[]) => {
      counts[command.name] = (counts[command.name] ?? 0) + 1;
      return (send as (...a: unknown[]) => unknown)(command, ...rest);
    };
    return counts;
  };

  /** The CLIENT LIST entry of the connection named `name`. */
  const clientInfo = async (name: string) => {
    const list = (await probe.client('LIST')) as string;
    const line = list.split('\n').find((l) => l.includes(` name=${name} `));
    return line
      ? Object.fromEntries(
          line
            .trim()
            .split(' ')
            .map((kv) => kv.split('=', 2) as [string, string]),
        )
      : null;
  };

  type Answer = (command: AgentCommand) => unknown[];

  /**
   * A worker link and an "API process" draining the device inboxes through the gateway's scripts
   * into `answer`, which plays the agent; each bus gets a prefix of its own. Without `autoDrain`
   * the agent is offline until the test calls `deliver` (as the gateway does on hello).
   */
  const bus = async (answer: Answer, opts: { autoDrain?: boolean; subscriberRetryMs?: number } = {}) => {
    const prefix = `${queuePrefix('agentbus')}_${++prefixNo}`;
    const keys = agentBusKeys(prefix);
    const workerRedis = client();
    const subscriberName = `link-sub-${prefixNo}`;
    const workerSub = client({
      connectionName: subscriberName,
      ...(opts.subscriberRetryMs ? { retryStrategy: () => opts.subscriberRetryMs } : {}),
    });
    const link = new RedisAgentLink(workerRedis, workerSub, keys);
    const apiScripts = new AgentBusScripts(client(), keys);
    const apiSub = client();
    const delivered: { deviceId: string; command: AgentCommand }[] = [];
    const deliver = async (deviceId: string) => {
      for (;;) {
        const { entries, remaining } = await apiScripts.drain(deviceId, Date.now());
        for (const raw of entries) {
          const { command } = JSON.parse(raw) as InboxEntry;
          delivered.push({ deviceId, command });
          for (const frame of answer(command)) {
            await apiScripts.reply(deviceId, command.commandId, JSON.stringify(frame));
          }
        }
        if (remaining === 0) return;
      }
    };
    if (opts.autoDrain !== false) {
      apiSub.on('message', (_channel: string, deviceId: string) => void deliver(deviceId));
      await apiSub.subscribe(keys.notify);
    }
    const queued = (deviceId: string, n = 1) =>
      waitUntil(async () => (await probe.llen(keys.inbox(deviceId))) === n, 5000, `${n} command(s) queued for ${deviceId}`);
    return { prefix, keys, link, workerRedis, workerSub, subscriberName, apiScripts, delivered, deliver, queued };
  };

  const HASH = (n: number) => n.toString(16).padStart(64, '0');
  const apply = (deviceId: string, commandId: string, n = 1) => ({
    deviceId,
    hostname: deviceId,
    commandId,
    settings: CONFIGMGR_DEFAULT_REMOTE_TOOLS,
    versionHash: HASH(n),
  });
  const applied: Answer = (c) =>
    c.type === 'apply_settings' ? [{ v: 1, type: 'settings_applied', commandId: c.commandId, versionHash: c.versionHash }] : [];
  const silent: Answer = () => [];

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    probe = client();
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await redis.stop();
  });

  it('demultiplexes many concurrent commands over one pattern subscription, one script call each', async () => {
    const b = await bus(applied);
    await b.link.applySettings(apply('warm-up', 'c-warm'), 5000); // the subscription is made once, on first use
    const worker = counted(b.workerRedis);
    const subscriber = counted(b.workerSub);
    const n = 300;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => b.link.applySettings(apply(`dev-${i % 30}`, `c-${i}`, i), 10_000)),
    );
    // Each call got the answer to its own command.
    results.forEach((r, i) => expect(r).toEqual({ status: 'applied', versionHash: HASH(i) }));
    expect(worker).toEqual({ evalsha: n });
    expect(subscriber).toEqual({});
    expect(await clientInfo(b.subscriberName)).toMatchObject({ psub: '1', sub: '0' });
    expect(await probe.pubsub('CHANNELS', `${b.keys.replyChannelPrefix}*`)).toEqual([]);
    expect(b.link.pending).toBe(0);
  });

  it('answers from earlier answers (a retried job) without sending the command again', async () => {
    const b = await bus(applied, { autoDrain: false });
    const cmd = apply('dev-retry', 'c-retry');
    const first = b.link.applySettings(cmd, 5000);
    await b.queued('dev-retry');
    await b.deliver('dev-retry');
    expect(await first).toEqual({ status: 'applied', versionHash: HASH(1) });
    // The job runs again (its worker died after the answer): the answer is read back, nothing is queued.
    expect(await b.link.applySettings(cmd, 5000)).toEqual({ status: 'applied', versionHash: HASH(1) });
    expect(await probe.llen(b.keys.inbox('dev-retry'))).toBe(0);
    expect(b.delivered).toHaveLength(1);
  });

  it('takes an answer given before the wait began', async () => {
    const b = await bus(silent, { autoDrain: false });
    // The command reached the agent through an earlier attempt whose worker is gone; the agent answered.
    await probe.hset(b.keys.sent('dev-early'), 'c-early', String(Date.now() + 60_000));
    expect(
      await b.apiScripts.reply(
        'dev-early',
        'c-early',
        JSON.stringify({ v: 1, type: 'settings_applied', commandId: 'c-early', versionHash: HASH(7) }),
      ),
    ).toBe(true);
    expect(await b.link.applySettings(apply('dev-early', 'c-early', 7), 5000)).toEqual({ status: 'applied', versionHash: HASH(7) });
    expect(await probe.llen(b.keys.inbox('dev-early'))).toBe(0);
  });

  it('queues the command again when earlier answers give no verdict yet, and finishes on the new ones', async () => {
    let agentStarts = 0;
    const b = await bus((c) => {
      if (c.type !== 'start_session') return [];
      agentStarts++;
      // The agent asked for consent once; asked again for the same command id it reports the session started.
      return agentStarts === 1
        ? [{ v: 1, type: 'consent', commandId: c.commandId, sessionId: c.sessionId, outcome: 'granted', answeredBy: 'CONTOSO\\carol' }]
        : [{ v: 1, type: 'session_started', commandId: c.commandId, sessionId: c.sessionId, connect: { host: 'pc', port: 5938 } }];
    });
    const start = {
      deviceId: 'dev-consent',
      hostname: 'pc',
      commandId: 'c-start',
      sessionId: '00000000-0000-4000-8000-000000000001',
      viewer: 'alice',
      type: 'remote-control' as const,
      access: 'full' as const,
      consentRule: 'prompt_user' as const,
      consentTimeoutMs: 1000,
      consentOnTimeout: 'deny' as const,
      notification: { taskbarIcon: true, connectionBar: true, audibleSignal: 'begin_end' as const },
    };
    // First attempt: consent arrives, the start never does (the worker dies, simulated by a short timeout).
    await expect(b.link.startSession(start, 300)).rejects.toBeInstanceOf(AgentTimeoutError);
    await waitUntil(async () => (await probe.llen(b.keys.replies('c-start'))) === 1, 5000, 'the consent answer');
    // The retry sees the consent, queues the command again and completes with the agent's next answer.
    expect(await b.link.startSession(start, 5000)).toEqual({
      outcome: 'started',
      answeredBy: 'CONTOSO\\carol',
      consent: 'granted',
      connect: { host: 'pc', port: 5938 },
    });
    expect(b.delivered.map((d) => d.command.commandId)).toEqual(['c-start', 'c-start']);
  });

  it('keeps a command for an offline agent until it comes back, and times out when it does not', async () => {
    const b = await bus(applied, { autoDrain: false });
    const late = b.link.applySettings(apply('dev-offline', 'c-offline'), 60_000);
    await b.queued('dev-offline');
    await b.deliver('dev-offline'); // the agent reconnects: the gateway drains on hello
    expect(await late).toEqual({ status: 'applied', versionHash: HASH(1) });

    // Nobody holds the device: the step times out, and a later connection is not handed the stale command.
    await expect(b.link.applySettings(apply('dev-gone', 'c-gone'), 200)).rejects.toThrow(/did not answer apply_settings within 200 ms/);
    await b.deliver('dev-gone');
    expect(b.delivered.map((d) => d.command.commandId)).toEqual(['c-offline']);
    expect(b.link.pending).toBe(0);
  });

  it('refuses an answer for a command that was not sent to that device', async () => {
    const b = await bus(silent);
    const waiting = b.link.applySettings(apply('dev-victim', 'c-victim'), 60_000);
    await waitUntil(async () => b.delivered.length === 1, 5000, 'delivered');
    const frame = (hash: string) => JSON.stringify({ v: 1, type: 'settings_applied', commandId: 'c-victim', versionHash: hash });
    expect(await b.apiScripts.reply('dev-thief', 'c-victim', frame(HASH(666)))).toBe(false);
    expect(await probe.exists(b.keys.replies('c-victim'))).toBe(0);
    // The device it was sent to answers; a duplicate answer changes nothing.
    expect(await b.apiScripts.reply('dev-victim', 'c-victim', frame(HASH(1)))).toBe(true);
    expect(await waiting).toEqual({ status: 'applied', versionHash: HASH(1) });
    expect(await b.apiScripts.reply('dev-victim', 'c-victim', frame(HASH(1)))).toBe(true);
    expect(b.link.pending).toBe(0);
  });

  it('drains in order, drops expired and unreadable entries, records what it delivers, and lets every key expire', async () => {
    const prefix = `${queuePrefix('agentbus')}_${++prefixNo}`;
    const keys = agentBusKeys(prefix);
    const r = client();
    const scripts = new AgentBusScripts(r, keys);
    const now = Date.now();
    const entry = (commandId: string, expiresAt: number) =>
      JSON.stringify({
        command: { v: 1, type: 'end_session', commandId, sessionId: '00000000-0000-4000-8000-000000000002', reason: 'x' },
        expiresAt,
      });
    await r.rpush(
      keys.inbox('d'),
      entry('c-1', now + 60_000),
      entry('c-old', now - 1),
      '{not json',
      entry('c-2', now + 60_000),
      entry('c-3', now + 60_000),
    );
    await r.pexpire(keys.inbox('d'), 60_000);
    const first = await scripts.drain('d', now, 4);
    expect(first.entries.map((e) => (JSON.parse(e) as InboxEntry).command.commandId)).toEqual(['c-1', 'c-2']);
    expect(first.remaining).toBe(1);
    const second = await scripts.drain('d', now, 4);
    expect(second.entries.map((e) => (JSON.parse(e) as InboxEntry).command.commandId)).toEqual(['c-3']);
    expect(second).toMatchObject({ remaining: 0 });
    expect(await scripts.drain('d', now)).toEqual({ entries: [], remaining: 0 });
    expect(await r.hkeys(keys.sent('d'))).toEqual(['c-1', 'c-2', 'c-3']);
    expect(await r.hget(keys.sent('d'), 'c-1')).toBe(String(now + 60_000));
    expect(await scripts.reply('d', 'c-old', '{}')).toBe(false); // expired before delivery: never sent
    expect(await scripts.reply('d', 'c-2', '{"v":1}')).toBe(true);
    const ours = await r.keys(`${prefix}:*`);
    expect(ours.sort()).toEqual([keys.replies('c-2'), keys.sent('d')].sort());
    for (const k of ours) expect(await r.ttl(k)).toBeGreaterThan(0);
  });

  it('keeps working across a dropped subscriber connection and a Redis restart', async () => {
    // The link's subscriber reconnects slowly, so that the answer is published while it is away.
    const b = await bus(applied, { subscriberRetryMs: 300 });
    expect(await b.link.applySettings(apply('dev-r', 'c-r1'), 5000)).toMatchObject({ status: 'applied' });

    await probe.client('KILL', 'ID', (await clientInfo(b.subscriberName))!.id);
    expect(await b.link.applySettings(apply('dev-r', 'c-r2', 2), 10_000)).toEqual({ status: 'applied', versionHash: HASH(2) });

    await redis.kill();
    await redis.startProcess(); // empty: subscriptions and scripts are gone too
    await waitUntil(async () => (await clientInfo(b.subscriberName))?.psub === '1', 10_000, 'pattern subscription restored');
    await waitUntil(async () => (await probe.pubsub('NUMSUB', b.keys.notify))[1] === 1, 10_000, 'the API process subscribed again');
    expect(await b.link.applySettings(apply('dev-r', 'c-r3', 3), 10_000)).toEqual({ status: 'applied', versionHash: HASH(3) });
  });
});
