import { Gauge } from 'prom-client';
import { metricsRegistry } from './metrics';

/**
 * Gauges read when Prometheus scrapes, from sources the API registers (the worker has none): queue depths, the outbox, connected agents. A source is asked at most once per
 * `CACHE_MS` however many scrapes arrive, and a scrape waits for it at most `TIMEOUT_MS`; a source
 * that fails or is late leaves its gauge empty for that scrape rather than showing stale numbers.
 */
const CACHE_MS = 5000;
const TIMEOUT_MS = 2000;

/** BullMQ job states shown per queue. */
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;
export type QueueState = (typeof QUEUE_STATES)[number];

export type QueueCounts = Record<string, Partial<Record<QueueState, number>>>;
export interface OutboxStats {
  /** Rows not yet moved to BullMQ (counted up to a cap). */
  pending: number;
  /** Age of the oldest such row; 0 when there is none. */
  oldestAgeSeconds: number;
}

/** A value fetched at most once per ttl, shared by concurrent callers, given up on after a timeout. */
export class CachedProbe<T> {
  private value: { at: number; v: T } | null = null;
  private pending: Promise<T | null> | null = null;

  constructor(
    private readonly fetch: () => Promise<T>,
    private readonly ttlMs = CACHE_MS,
    private readonly timeoutMs = TIMEOUT_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** The cached value while fresh, else a new one; null when the source failed or did not answer in time. */
  get(): Promise<T | null> {
    if (this.value && this.now() - this.value.at < this.ttlMs) return Promise.resolve(this.value.v);
    this.pending ??= this.load().finally(() => (this.pending = null));
    return this.pending;
  }

  private async load(): Promise<T | null> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), this.timeoutMs);
      timer.unref();
    });
    try {
      const v = await Promise.race([this.fetch(), late]);
      if (v !== null) this.value = { at: this.now(), v };
      else this.value = null;
      return v;
    } catch {
      this.value = null;
      return null;
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Registers the gauge `name` when its source is first set, so a process without the source (the
 * worker) does not show a number it does not know.
 */
const registered = new Set<string>();
function once(name: string, register: () => void): void {
  if (registered.has(name)) return;
  registered.add(name);
  register();
}

let queueProbe: CachedProbe<QueueCounts> | null = null;
let outboxProbe: CachedProbe<OutboxStats> | null = null;
let agentCount: (() => number) | null = null;

/** The source of `rcflow_queue_jobs` (the API's queues); a failed read leaves the gauge without series. */
export function setQueueCountsSource(fetch: () => Promise<QueueCounts>): void {
  queueProbe = new CachedProbe(fetch);
  once('rcflow_queue_jobs', () => {
    new Gauge({
      name: 'rcflow_queue_jobs',
      help: 'Jobs per BullMQ queue and state (waiting, active, delayed, failed), read from Redis at scrape time by the API.',
      labelNames: ['queue', 'state'] as const,
      registers: [metricsRegistry],
      async collect() {
        this.reset();
        const counts = await queueProbe?.get();
        if (!counts) return;
        for (const [queue, byState] of Object.entries(counts))
          for (const state of QUEUE_STATES) this.set({ queue, state }, byState[state] ?? 0);
      },
    });
  });
}

/** The source of `rcflow_outbox_pending` and `rcflow_outbox_lag_seconds`; a failed read shows NaN. */
export function setOutboxStatsSource(fetch: () => Promise<OutboxStats>): void {
  outboxProbe = new CachedProbe(fetch);
  once('rcflow_outbox', () => {
    new Gauge({
      name: 'rcflow_outbox_pending',
      help: 'Outbox rows not yet moved to BullMQ (counted up to a cap; read at scrape time by the API).',
      registers: [metricsRegistry],
      async collect() {
        this.set((await outboxProbe?.get())?.pending ?? Number.NaN);
      },
    });
    new Gauge({
      name: 'rcflow_outbox_lag_seconds',
      help: 'Age of the oldest outbox row not yet moved to BullMQ, 0 when there is none (read at scrape time by the API).',
      registers: [metricsRegistry],
      async collect() {
        this.set((await outboxProbe?.get())?.oldestAgeSeconds ?? Number.NaN);
      },
    });
  });
}

/** The source of `rcflow_agents_connected` (this API process' agent sockets). */
export function setAgentsConnectedSource(count: () => number): void {
  agentCount = count;
  once('rcflow_agents_connected', () => {
    new Gauge({
      name: 'rcflow_agents_connected',
      help: "Device agents connected to this API process' WebSocket.",
      registers: [metricsRegistry],
      collect() {
        this.set(agentCount?.() ?? 0);
      },
    });
  });
}
