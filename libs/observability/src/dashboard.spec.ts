import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { enableProcessMetrics, metricsRegistry } from './metrics';
import { setAgentsConnectedSource, setOutboxStatsSource, setQueueCountsSource } from './scrape-gauges';

interface Target {
  expr: string;
  datasource?: { uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}

const dashboard = JSON.parse(readFileSync(join(__dirname, '../../../deploy/grafana/rcflow-dashboard.json'), 'utf8')) as {
  uid: string;
  templating: { list: { name: string; type: string; query: string }[] };
  panels: Panel[];
};
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const queried = panels.filter((p) => p.type !== 'row');

/** Every metric name the API or the worker may expose, scrape-time gauges included. */
function registeredNames(): Set<string> {
  enableProcessMetrics();
  setQueueCountsSource(async () => ({}));
  setOutboxStatsSource(async () => ({ pending: 0, oldestAgeSeconds: 0 }));
  setAgentsConnectedSource(() => 0);
  return new Set(metricsRegistry.getMetricsAsArray().map((m) => m.name));
}

/** The series names an expression reads: a histogram's _bucket, _sum and _count are its own name's. */
function metricsOf(expr: string, histograms: Set<string>): string[] {
  return [...expr.matchAll(/\brcflow_[a-zA-Z0-9_]+/g)].map(([name]) => {
    const base = name.replace(/_(bucket|sum|count)$/, '');
    return base !== name && histograms.has(base) ? base : name;
  });
}

describe('deploy/grafana/rcflow-dashboard.json', () => {
  it('queries only metrics that exist, so the dashboard cannot drift from the code', () => {
    const names = registeredNames();
    const histograms = new Set(
      metricsRegistry
        .getMetricsAsArray()
        .filter((m) => (m as unknown as { type: string }).type === 'histogram')
        .map((m) => m.name),
    );
    const used = queried.flatMap((p) => (p.targets ?? []).flatMap((t) => metricsOf(t.expr, histograms).map((m) => [p.title, m])));
    expect(used.length).toBeGreaterThan(20);
    expect(used.filter(([, m]) => !names.has(m))).toEqual([]);
  });

  it('shows every rcflow metric of the issue somewhere', () => {
    const exprs = queried.flatMap((p) => (p.targets ?? []).map((t) => t.expr)).join('\n');
    for (const name of [
      'rcflow_session_transitions_total',
      'rcflow_session_request_to_active_seconds',
      'rcflow_session_duration_seconds',
      'rcflow_eligibility_refusals_total',
      'rcflow_queue_jobs',
      'rcflow_outbox_lag_seconds',
      'rcflow_outbox_pending',
      'rcflow_agents_connected',
      'rcflow_agent_command_timeouts_total',
      'rcflow_transition_batch_size',
      'rcflow_webhook_deliveries_total',
      'rcflow_ticket_writebacks_total',
    ])
      expect([name, exprs.includes(name)]).toEqual([name, true]);
  });

  it('reads from the Prometheus data source chosen in its variable, in every panel and query', () => {
    expect(dashboard.templating.list).toContainEqual(
      expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }),
    );
    expect(queried.length).toBeGreaterThan(10);
    for (const p of queried) {
      expect([p.title, p.datasource?.uid]).toEqual([p.title, '${datasource}']);
      for (const t of p.targets ?? []) expect([p.title, t.datasource?.uid]).toEqual([p.title, '${datasource}']);
    }
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
  });
});
