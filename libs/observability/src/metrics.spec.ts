import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  countAgentCommandTimeout,
  countRefusal,
  countTicketWriteback,
  countTransition,
  countWebhookDelivery,
  metricsRegistry,
  observeRequestToActive,
  observeSessionDuration,
  observeTransitionBatch,
} from './metrics';
import { bearerOf, metricsTokenMatches, serveMetrics } from './metrics-endpoint';
import { CachedProbe, setQueueCountsSource } from './scrape-gauges';

/** The current value of one series. */
async function value(name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = await metricsRegistry.getSingleMetric(name)!.get();
  const hit = metric.values.find(
    (v) => Object.keys(labels).every((k) => v.labels[k] === labels[k]) && Object.keys(v.labels).length === Object.keys(labels).length,
  );
  return hit?.value;
}

describe('metrics helpers', () => {
  beforeEach(() => metricsRegistry.resetMetrics());

  it('counts transitions by from and to; a move the lifecycle does not allow makes no series', async () => {
    countTransition('requested', 'validating');
    countTransition('requested', 'validating');
    countTransition(null, 'requested');
    countTransition('active', 'requested'); // not a move of the lifecycle
    expect(await value('rcflow_session_transitions_total', { from: 'requested', to: 'validating' })).toBe(2);
    expect(await value('rcflow_session_transitions_total', { from: 'none', to: 'requested' })).toBe(1);
    const series = (await metricsRegistry.getSingleMetric('rcflow_session_transitions_total')!.get()).values;
    expect(series.find((v) => v.labels.from === 'active' && v.labels.to === 'requested')).toBeUndefined();
  });

  it('keeps every label within its fixed set', async () => {
    countRefusal('permitted_viewer');
    countRefusal('nonsense' as never);
    countAgentCommandTimeout('apply_settings');
    countAgentCommandTimeout('whatever the agent said');
    countWebhookDelivery('delivered');
    countTicketWriteback('dead');
    expect(await value('rcflow_eligibility_refusals_total', { check: 'permitted_viewer' })).toBe(1);
    expect((await metricsRegistry.getSingleMetric('rcflow_eligibility_refusals_total')!.get()).values.map((v) => v.labels.check)).toEqual([
      'permitted_viewer',
    ]);
    expect(await value('rcflow_agent_command_timeouts_total', { command: 'apply_settings' })).toBe(1);
    expect(await value('rcflow_agent_command_timeouts_total', { command: 'other' })).toBe(1);
    expect(await value('rcflow_webhook_deliveries_total', { outcome: 'delivered' })).toBe(1);
    expect(await value('rcflow_ticket_writebacks_total', { outcome: 'dead' })).toBe(1);
  });

  it('observes the histograms', async () => {
    observeRequestToActive(1.5);
    observeRequestToActive(-1); // a clock step: not a duration
    observeSessionDuration('ended', 600);
    observeTransitionBatch(7);
    const text = await metricsRegistry.metrics();
    expect(text).toContain('rcflow_session_request_to_active_seconds_count 1');
    expect(text).toContain('rcflow_session_request_to_active_seconds_bucket{le="2.5"} 1');
    expect(text).toContain('rcflow_session_duration_seconds_count{end="ended"} 1');
    expect(text).toContain('rcflow_transition_batch_size_bucket{le="8"} 1');
  });
});

describe('CachedProbe', () => {
  it('asks its source once per ttl, shares one answer among concurrent callers, and gives up on a late or failing source', async () => {
    let now = 0;
    let calls = 0;
    let mode: 'ok' | 'late' | 'fail' = 'ok';
    const probe = new CachedProbe(
      async () => {
        calls++;
        if (mode === 'fail') throw new Error('down');
        if (mode === 'late') await new Promise((r) => setTimeout(r, 200));
        return calls;
      },
      5000,
      50,
      () => now,
    );
    expect(await Promise.all([probe.get(), probe.get()])).toEqual([1, 1]);
    now = 4999;
    expect(await probe.get()).toBe(1);
    now = 5000;
    expect(await probe.get()).toBe(2);
    now = 20_000;
    mode = 'late';
    expect(await probe.get()).toBeNull();
    mode = 'fail';
    expect(await probe.get()).toBeNull();
    mode = 'ok';
    expect(await probe.get()).toBe(5);
    expect(calls).toBe(5);
  });

  it('feeds rcflow_queue_jobs at scrape time, and leaves it empty when the source fails', async () => {
    let fail = false;
    setQueueCountsSource(async () => {
      if (fail) throw new Error('redis down');
      return { sessions: { waiting: 3, active: 1 } };
    });
    const text = await metricsRegistry.metrics();
    expect(text).toContain('rcflow_queue_jobs{queue="sessions",state="waiting"} 3');
    expect(text).toContain('rcflow_queue_jobs{queue="sessions",state="delayed"} 0');
    fail = true;
    setQueueCountsSource(async () => {
      throw new Error('redis down');
    });
    expect(await metricsRegistry.metrics()).not.toContain('rcflow_queue_jobs{');
  });
});

describe('the metrics endpoint', () => {
  it('compares tokens exactly', () => {
    expect(metricsTokenMatches('a'.repeat(40), 'a'.repeat(40))).toBe(true);
    expect(metricsTokenMatches('a'.repeat(40), 'a'.repeat(41))).toBe(false);
    expect(metricsTokenMatches('', 'a'.repeat(40))).toBe(false);
    expect(bearerOf('Bearer abc')).toBe('abc');
    expect(bearerOf('Basic abc')).toBeNull();
    expect(bearerOf(undefined)).toBeNull();
  });

  describe('on a plain HTTP server (the worker)', () => {
    const TOKEN = 't'.repeat(40);
    let server: Server;
    let open: Server;
    const url = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}/metrics`;
    beforeAll(async () => {
      server = createServer((req, res) => void serveMetrics(req, res, TOKEN));
      open = createServer((req, res) => void serveMetrics(req, res, null));
      await Promise.all([server, open].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
    });
    afterAll(() => Promise.all([server, open].map((s) => new Promise((r) => s.close(r)))));

    it('answers the token holder in the Prometheus format, 401 to anyone else, 403 while no token is set', async () => {
      const ok = await fetch(url(server), { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(await ok.text()).toContain('# TYPE rcflow_session_transitions_total counter');
      expect((await fetch(url(server))).status).toBe(401);
      expect((await fetch(url(server), { headers: { authorization: `Bearer ${TOKEN}x` } })).status).toBe(401);
      const none = await fetch(url(open), { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(none.status).toBe(403);
      expect(await none.json()).toEqual({ error: { status: 403, code: 'forbidden', message: 'set METRICS_TOKEN to scrape this process' } });
    });
  });
});
