import type { AuditItem } from '@rcflow/audit';
import { clock } from '../../../rcctl/src/format';
import { followStream } from '../../../rcctl/src/sse';
import type { DemoWorld } from './demo-seed';

const HOSTNAMES: Record<keyof DemoWorld['devices'], string> = { ws1: 'WS-1', ws2: 'WS-2', ws3: 'WS-3', demoPc: 'DEMO-PC' };

/** One line for a session event: when, which device, what it became, who for, and why. */
export function liveLine(e: AuditItem, world: Pick<DemoWorld, 'devices' | 'principals'>): string {
  const hosts = new Map(Object.entries(world.devices).map(([k, id]) => [id, HOSTNAMES[k as keyof DemoWorld['devices']]]));
  const people = new Map(Object.entries(world.principals).map(([name, id]) => [id, name]));
  const device = (e.deviceId && hosts.get(e.deviceId)) ?? e.deviceId?.slice(0, 8) ?? '-';
  const viewer = e.viewerId ? (people.get(e.viewerId) ?? e.viewerId.slice(0, 8)) : '';
  const consent = typeof e.data.consent === 'string' ? ` (consent: ${e.data.consent})` : '';
  const why = e.reason ? ` — ${e.reason}` : '';
  return `  ${clock(e.occurredAt)}  ${device.padEnd(8)} ${e.outcome.padEnd(16)} ${viewer.padEnd(6)} session ${e.sessionId?.slice(0, 8) ?? '-'}${consent}${why}`;
}

/**
 * After the banner, the demo prints each session transition as it happens: it follows the event
 * stream (GET /v1/events) as the administrator, as `rcctl watch` does, until the process ends.
 */
export function printLiveTransitions(base: string, key: string, world: DemoWorld, print: (line: string) => void): AbortController {
  const stop = new AbortController();
  process.once('exit', () => stop.abort());
  void followStream({
    baseUrl: base,
    headers: { authorization: `Bearer ${key}` },
    path: '/v1/events?types=session.',
    signal: stop.signal,
    onMessage: (m) => {
      if (!m.data) return;
      print(liveLine(JSON.parse(m.data) as AuditItem, world));
    },
  }).catch((err: unknown) => print(`  (live transitions stopped: ${(err as Error).message})`));
  return stop;
}
