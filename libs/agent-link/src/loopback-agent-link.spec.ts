import { LoopbackAgentLink } from './loopback-agent-link';
import { AgentTimeoutError } from './agent-link';
import { CONFIGMGR_DEFAULT_REMOTE_TOOLS } from '@rcflow/domain';

const cfg = {
  default: { settings: 'ack' as const, consent: 'grant' as const, latencyMs: 0 },
  byHostname: { quiet: { settings: 'silent' as const, consent: 'silent' as const, latencyMs: 0 } },
};
const target = (hostname: string) => ({ deviceId: 'd1', hostname });
const start = (hostname: string, consentRule: 'prompt_user' | 'not_required') => ({
  ...target(hostname),
  commandId: `c-${hostname}-${consentRule}`,
  sessionId: 's1',
  viewer: 'alice',
  type: 'remote-control' as const,
  access: 'full' as const,
  consentRule,
  consentTimeoutMs: 100,
  consentOnTimeout: 'deny' as const,
  notification: { taskbarIcon: true, connectionBar: true, audibleSignal: 'begin_end' as const },
});

describe('LoopbackAgentLink', () => {
  it('applies a command id once and answers a repeat with the first answer', async () => {
    const link = new LoopbackAgentLink(cfg);
    const cmd = { ...target('pc'), commandId: 'c1', settings: CONFIGMGR_DEFAULT_REMOTE_TOOLS, versionHash: 'h' };
    const a = await link.applySettings(cmd, 100);
    const b = await link.applySettings(cmd, 100);
    expect(a).toEqual({ status: 'applied', versionHash: 'h' });
    expect(b).toEqual(a);
    expect(link.applied.get('c1')).toBe(1);
  });

  it('times out for a silent agent', async () => {
    const link = new LoopbackAgentLink(cfg);
    const cmd = { ...target('quiet'), commandId: 'c2', settings: CONFIGMGR_DEFAULT_REMOTE_TOOLS, versionHash: 'h' };
    await expect(link.applySettings(cmd, 10)).rejects.toBeInstanceOf(AgentTimeoutError);
  });

  it('asks consent only under the prompt rule', async () => {
    const link = new LoopbackAgentLink(cfg);
    expect(await link.startSession(start('quiet', 'prompt_user'), 100)).toEqual({ outcome: 'consent_timeout' });
    expect(await link.startSession(start('quiet', 'not_required'), 100)).toMatchObject({
      outcome: 'started',
      answeredBy: null,
      consent: 'not_required',
    });
    expect(await link.startSession(start('pc', 'prompt_user'), 100)).toMatchObject({
      outcome: 'started',
      answeredBy: 'loopback-user@pc',
      consent: 'granted',
    });
  });
});
