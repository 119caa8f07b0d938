import { expect } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { PolicyConsentProvider, type ConsentProvider, type ConsentRequest } from './consent-providers';
import { DeviceAgent } from './device-agent';
import { memoryLogger } from './logger';
import { MemoryStateStore } from './state-store';
import { applySettings, collectingSink, endSession, FACTS, serverFrame, SETTINGS, SETTINGS_HASH, startSession } from './testing/fixtures';
import { parseServerMessage } from '@rcflow/agent-protocol';

function setup(
  consent: ConsentProvider = new PolicyConsentProvider('accept'),
  extra: { rejectSettings?: boolean; preapproval?: { answer: 'ask' | 'grant' | 'deny'; revokeAfterMs?: number | null } } = {},
) {
  const store = new MemoryStateStore();
  const log = memoryLogger();
  const sink = collectingSink();
  const agent = new DeviceAgent({ store, consent, facts: () => FACTS, viewerEndpoint: { host: 'pc-1', port: 5938 }, log, ...extra });
  agent.attach(sink);
  return { store, log, sink, agent };
}

/** A consent provider answered by the test. */
function manualConsent() {
  const asked: { request: ConsentRequest; answer: (outcome: 'granted' | 'denied' | 'timed_out') => void }[] = [];
  const provider: ConsentProvider = {
    ask: (request) =>
      new Promise((resolve) => {
        asked.push({ request, answer: (outcome) => resolve({ outcome, answeredBy: outcome === 'timed_out' ? null : 'alice' }) });
        request.signal?.addEventListener('abort', () => resolve({ outcome: 'timed_out', answeredBy: null }));
      }),
  };
  return { provider, asked };
}

describe('DeviceAgent', () => {
  describe('apply_settings', () => {
    it('applies a command once and answers a repeat with the first answer', async () => {
      const { agent, store, sink } = setup();
      const save = jest.spyOn(store, 'saveSettings');
      const cmd = serverFrame(applySettings('cmd-1'));
      await agent.handle(cmd);
      await agent.handle(cmd);
      expect(save).toHaveBeenCalledTimes(1);
      expect(sink.frames).toEqual([
        { v: 1, type: 'settings_applied', commandId: 'cmd-1', versionHash: SETTINGS_HASH },
        { v: 1, type: 'settings_applied', commandId: 'cmd-1', versionHash: SETTINGS_HASH },
      ]);
      expect(store.appliedSettingsHash()).toBe(SETTINGS_HASH);
      expect(store.appliedSettings()).toEqual(SETTINGS);
      expect((await agent.presence()).appliedSettingsHash).toBe(SETTINGS_HASH);
    });

    it('keeps answering a repeat the same way after later settings were applied', async () => {
      const { agent, sink, store } = setup();
      await agent.handle(serverFrame(applySettings('cmd-1')));
      const other = { ...SETTINGS, enabled: false };
      await agent.handle(serverFrame(applySettings('cmd-2', other)));
      await agent.handle(serverFrame(applySettings('cmd-1')));
      expect(sink.frames[2]).toEqual(sink.frames[0]);
      // The repeat of cmd-1 must not roll the settings back.
      expect(store.appliedSettings()).toEqual(other);
    });

    it('rejects when configured to, and remembers the rejection', async () => {
      const { agent, sink, store } = setup(undefined, { rejectSettings: true });
      const cmd = serverFrame(applySettings('cmd-r'));
      await agent.handle(cmd);
      await agent.handle(cmd);
      expect(sink.frames).toHaveLength(2);
      expect(sink.frames[0]).toMatchObject({ type: 'settings_rejected', commandId: 'cmd-r', reason: expect.stringContaining('reject') });
      expect(sink.frames[1]).toEqual(sink.frames[0]);
      expect(store.appliedSettingsHash()).toBeNull();
    });

    it('refuses an apply_settings whose settings fail the schema instead of ignoring it', () => {
      const { agent, sink, log } = setup();
      const raw = JSON.stringify({ ...applySettings('cmd-bad'), settings: { ...SETTINGS, accessLevel: 'everything' } });
      const r = parseServerMessage(raw);
      if (r.ok) throw new Error('expected a bad frame');
      agent.malformed(raw, r);
      expect(sink.frames).toEqual([
        { v: 1, type: 'settings_rejected', commandId: 'cmd-bad', reason: expect.stringContaining('accessLevel') },
      ]);
      expect(log.lines.join('\n')).toContain('malformed frame');
    });

    it('answers settings_rejected without recording it when the settings cannot be persisted', async () => {
      const { agent, sink, store, log } = setup();
      jest.spyOn(store, 'saveSettings').mockImplementationOnce(() => {
        throw new Error('EACCES: permission denied');
      });
      const cmd = serverFrame(applySettings('cmd-io'));
      await agent.handle(cmd);
      expect(sink.frames[0]).toMatchObject({ type: 'settings_rejected', reason: expect.stringContaining('EACCES') });
      expect(log.lines.some((l) => l.startsWith('error:'))).toBe(true);
      // Nothing was applied, so a redelivery is carried out for real.
      await agent.handle(cmd);
      expect(sink.frames[1]).toMatchObject({ type: 'settings_applied', commandId: 'cmd-io' });
    });
  });

  describe('start_session', () => {
    it('asks consent under prompt_user and starts on a grant', async () => {
      const { agent, sink, store } = setup();
      const cmd = startSession({ commandId: 'cmd-s' });
      await agent.handle(serverFrame(cmd));
      expect(sink.frames).toEqual([
        { v: 1, type: 'consent', commandId: 'cmd-s', sessionId: cmd.sessionId, outcome: 'granted', answeredBy: 'alice' },
        { v: 1, type: 'session_started', commandId: 'cmd-s', sessionId: cmd.sessionId, connect: { host: 'pc-1', port: 5938 } },
      ]);
      expect(store.activeSessions().map((s) => s.sessionId)).toEqual([cmd.sessionId]);
    });

    it('does not start on a denial', async () => {
      const { agent, sink, store } = setup(new PolicyConsentProvider('deny'));
      const cmd = startSession();
      await agent.handle(serverFrame(cmd));
      expect(sink.frames).toEqual([
        { v: 1, type: 'consent', commandId: cmd.commandId, sessionId: cmd.sessionId, outcome: 'denied', answeredBy: 'alice' },
      ]);
      expect(store.activeSessions()).toEqual([]);
    });

    it('reports timed_out and does not start when nobody answers and onTimeout is deny', async () => {
      const { agent, sink } = setup(new PolicyConsentProvider('none'));
      const cmd = startSession({ timeoutMs: 100, onTimeout: 'deny' });
      await agent.handle(serverFrame(cmd));
      expect(sink.frames.map((f) => f.type)).toEqual(['consent']);
      expect(sink.frames[0]).toMatchObject({ outcome: 'timed_out', answeredBy: null });
    });

    it('proceeds but reports timed_out when nobody answers and onTimeout is allow', async () => {
      const { agent, sink, store } = setup(new PolicyConsentProvider('none'));
      const cmd = startSession({ timeoutMs: 100, onTimeout: 'allow' });
      await agent.handle(serverFrame(cmd));
      expect(sink.frames.map((f) => f.type)).toEqual(['consent', 'session_started']);
      expect(sink.frames[0]).toMatchObject({ outcome: 'timed_out', answeredBy: null });
      expect(store.activeSessions()).toHaveLength(1);
    });

    it.each(['unattended_allowed', 'not_required'] as const)('does not ask under %s', async (rule) => {
      const ask = jest.fn();
      const { agent, sink } = setup({ ask });
      const cmd = startSession({ rule });
      await agent.handle(serverFrame(cmd));
      expect(ask).not.toHaveBeenCalled();
      expect(sink.frames[0]).toMatchObject({ type: 'consent', outcome: 'not_required', answeredBy: null });
      expect(sink.frames[1]).toMatchObject({ type: 'session_started' });
    });

    it('passes the viewer, type, access and timeout to the consent provider', async () => {
      const ask = jest.fn().mockResolvedValue({ outcome: 'granted', answeredBy: 'alice' });
      const { agent } = setup({ ask });
      await agent.handle(serverFrame({ ...startSession({ timeoutMs: 60_000 }), access: 'view', sessionType: 'remote-assistance' }));
      expect(ask).toHaveBeenCalledWith(
        expect.objectContaining({
          viewer: 'bob',
          sessionType: 'remote-assistance',
          access: 'view',
          timeoutMs: 60_000,
          loggedOnUser: 'alice',
        }),
      );
    });

    it('runs a command redelivered while its prompt is open only once', async () => {
      const { provider, asked } = manualConsent();
      const { agent, sink } = setup(provider);
      const cmd = serverFrame(startSession({ commandId: 'cmd-twice' }));
      const first = agent.handle(cmd);
      await new Promise((r) => setImmediate(r));
      await agent.handle(cmd);
      expect(asked).toHaveLength(1);
      expect(sink.frames).toEqual([]);
      asked[0].answer('granted');
      await first;
      expect(sink.frames.map((f) => f.type)).toEqual(['consent', 'session_started']);
      await agent.handle(cmd);
      expect(sink.frames.map((f) => f.type)).toEqual(['consent', 'session_started', 'consent', 'session_started']);
      expect(asked).toHaveLength(1);
    });

    it('treats a consent provider that fails as no answer and does not start, even with onTimeout allow', async () => {
      const { agent, sink, log } = setup({ ask: () => Promise.reject(new Error('display gone')) });
      await agent.handle(serverFrame(startSession({ onTimeout: 'allow' })));
      expect(sink.frames.map((f) => f.type)).toEqual(['consent']);
      expect(sink.frames[0]).toMatchObject({ outcome: 'timed_out' });
      expect(log.lines.join('\n')).toContain('display gone');
    });
  });

  describe('end_session', () => {
    it('ends an active session once and answers a repeat the same way', async () => {
      const { agent, sink, store } = setup();
      const start = startSession();
      await agent.handle(serverFrame(start));
      const end = serverFrame(endSession(start.sessionId, 'cmd-end'));
      await agent.handle(end);
      await agent.handle(end);
      const ended = {
        v: 1,
        type: 'session_ended',
        sessionId: start.sessionId,
        by: 'viewer',
        reason: 'viewer closed the window',
        commandId: 'cmd-end',
      };
      expect(sink.frames.slice(2)).toEqual([ended, ended]);
      expect(store.activeSessions()).toEqual([]);
    });

    it('acknowledges ending a session that is not active', async () => {
      const { agent, sink, log } = setup();
      const sessionId = randomUUID();
      await agent.handle(serverFrame(endSession(sessionId)));
      expect(sink.frames[0]).toMatchObject({ type: 'session_ended', sessionId, by: 'viewer' });
      expect(log.lines.join('\n')).toContain('not active');
    });

    it('withdraws an open consent prompt: consent timed_out, no session, even with onTimeout allow', async () => {
      const { provider, asked } = manualConsent();
      const { agent, sink, store } = setup(provider);
      const start = startSession({ onTimeout: 'allow' });
      const pending = agent.handle(serverFrame(start));
      await new Promise((r) => setImmediate(r));
      expect(asked).toHaveLength(1);
      await agent.handle(serverFrame(endSession(start.sessionId)));
      await pending;
      expect(sink.frames.map((f) => f.type)).toEqual(['session_ended', 'consent']);
      expect(sink.frames[1]).toMatchObject({ outcome: 'timed_out', answeredBy: null });
      expect(store.activeSessions()).toEqual([]);
    });
  });

  it('lets the local user end every active session', async () => {
    const { agent, sink, store } = setup();
    const a = startSession();
    const b = startSession();
    await agent.handle(serverFrame(a));
    await agent.handle(serverFrame(b));
    sink.frames.length = 0;
    sink.causes.length = 0;
    expect(agent.endSessionsByUser()).toBe(2);
    expect(sink.frames).toEqual([
      { v: 1, type: 'session_ended', sessionId: a.sessionId, by: 'user', reason: 'ended by the local user', commandId: null },
      { v: 1, type: 'session_ended', sessionId: b.sessionId, by: 'user', reason: 'ended by the local user', commandId: null },
    ]);
    expect(sink.causes).toEqual([null, null]);
    expect(store.activeSessions()).toEqual([]);
    expect(agent.endSessionsByUser()).toBe(0);
  });

  describe('stop', () => {
    it('answers an open prompt no in the given name, then ends the active sessions by the agent with the reason', async () => {
      const { provider, asked } = manualConsent();
      const { agent, sink, store, log } = setup(provider);
      const active = startSession({ commandId: 'cmd-a' });
      const starting = agent.handle(serverFrame(active));
      await new Promise((r) => setImmediate(r));
      asked[0].answer('granted');
      await starting;
      sink.frames.length = 0;
      const open = startSession({ commandId: 'cmd-open', onTimeout: 'allow' });
      const pending = agent.handle(serverFrame(open));
      await new Promise((r) => setImmediate(r));
      expect(asked).toHaveLength(2);
      const activeId = active.sessionId;
      expect(await agent.stop({ reason: 'agent stopped (Ctrl-C)', answeredBy: 'carol', endSessions: true })).toBe(1);
      await pending;
      expect(sink.frames).toEqual([
        { v: 1, type: 'consent', commandId: 'cmd-open', sessionId: open.sessionId, outcome: 'denied', answeredBy: 'carol' },
        { v: 1, type: 'session_ended', sessionId: activeId, by: 'agent', reason: 'agent stopped (Ctrl-C)', commandId: null },
      ]);
      expect(store.activeSessions()).toEqual([]);
      expect(log.lines.join('\n')).toMatch(/consent answered: denied by carol \(agent stopped \(Ctrl-C\); answered no for the user\)/);
    });

    it('denies a prompt arriving after the stop without asking, and keeps the sessions when told to', async () => {
      const { provider, asked } = manualConsent();
      const { agent, sink, store } = setup(provider);
      const first = startSession({ commandId: 'cmd-1' });
      const pending = agent.handle(serverFrame(first));
      await new Promise((r) => setImmediate(r));
      asked[0].answer('granted');
      await pending;
      expect(await agent.stop({ reason: 'agent stopped (SIGTERM)', answeredBy: null, endSessions: false })).toBe(0);
      sink.frames.length = 0;
      const late = startSession({ commandId: 'cmd-late' });
      await agent.handle(serverFrame(late));
      expect(asked).toHaveLength(1);
      expect(sink.frames).toEqual([
        { v: 1, type: 'consent', commandId: 'cmd-late', sessionId: late.sessionId, outcome: 'denied', answeredBy: null },
      ]);
      expect(store.activeSessions().map((s) => s.sessionId)).toEqual([first.sessionId]);
    });
  });

  it('logs error frames from the server and carries on', async () => {
    const { agent, sink, log } = setup();
    await agent.handle(serverFrame({ v: 1, type: 'error', code: 'rate_limited', message: 'slow down' }));
    expect(log.lines).toEqual(['warning: server reported an error (rate_limited): slow down']);
    expect(sink.frames).toEqual([]);
  });

  it('reports presence with the applied settings hash', async () => {
    const { agent } = setup();
    expect(await agent.presence()).toEqual({ ...FACTS, appliedSettingsHash: null });
  });

  describe('session notices and pre-approval', () => {
    const noticeFrame = (over: { askApproval?: boolean; windowStart?: string; windowEnd?: string } = {}) => {
      const noticeId = randomUUID();
      return {
        noticeId,
        frame: serverFrame({
          v: 1,
          type: 'session_notice',
          commandId: `notice:${noticeId}`,
          noticeId,
          sessionId: randomUUID(),
          scheduleId: null,
          windowStart: over.windowStart ?? new Date(Date.now() - 60_000).toISOString(),
          windowEnd: over.windowEnd ?? new Date(Date.now() + 3_600_000).toISOString(),
          viewer: 'bob',
          sessionType: 'remote-control',
          access: 'full',
          reason: 'printer',
          askApproval: over.askApproval ?? true,
        }),
      };
    };
    const preApproved = (noticeId: string) => {
      const frame = startSession();
      return serverFrame({ ...frame, consent: { ...frame.consent, rule: 'pre_approved', noticeId } });
    };
    const flush = () => new Promise((r) => setImmediate(r));

    it('shows the reminder, keeps the notice and acknowledges it once; the user answers later', async () => {
      const { agent, sink, store, log } = setup();
      const { noticeId, frame } = noticeFrame();
      await agent.handle(frame);
      await agent.handle(frame);
      await flush();
      expect(sink.frames).toEqual([
        { v: 1, type: 'notice_received', commandId: `notice:${noticeId}`, noticeId },
        { v: 1, type: 'notice_received', commandId: `notice:${noticeId}`, noticeId },
      ]);
      expect(log.lines.join('\n')).toMatch(/reminder: bob will remote-control this computer \(full control\)/);
      expect(log.lines.join('\n')).toMatch(new RegExp(`pre-approval asked: notice ${noticeId}`));
      expect(store.notice(noticeId)).toMatchObject({ approval: 'pending', viewer: 'bob' });

      expect(agent.answerNotices(noticeId.slice(0, 8), 'granted', 'carol')).toHaveLength(1);
      expect(sink.frames.at(-1)).toEqual({ v: 1, type: 'preapproval', noticeId, decision: 'granted', answeredBy: 'carol' });
      // Revoking needs a grant; a second revoke finds nothing to revoke.
      expect(agent.answerNotices(null, 'revoked', 'carol')).toHaveLength(1);
      expect(agent.answerNotices(null, 'revoked', 'carol')).toHaveLength(0);
      expect(store.notice(noticeId)).toMatchObject({ approval: 'revoked', answeredBy: 'carol' });
    });

    it('answers at once when configured to grant, as the logged-on user, and can take it back later', async () => {
      jest.useFakeTimers({ doNotFake: ['setImmediate'] });
      try {
        const { agent, sink } = setup(undefined, { preapproval: { answer: 'grant', revokeAfterMs: 5000 } });
        const { noticeId, frame } = noticeFrame();
        await agent.handle(frame);
        await flush();
        expect(sink.frames.map((f) => f.type)).toEqual(['notice_received', 'preapproval']);
        expect(sink.frames[1]).toEqual({ v: 1, type: 'preapproval', noticeId, decision: 'granted', answeredBy: 'alice' });
        jest.advanceTimersByTime(5000);
        await flush();
        expect(sink.frames[2]).toEqual({ v: 1, type: 'preapproval', noticeId, decision: 'revoked', answeredBy: 'alice' });
      } finally {
        jest.useRealTimers();
      }
    });

    it('does not ask, nor take answers, for a notice that is only a reminder', async () => {
      const { agent, sink } = setup(undefined, { preapproval: { answer: 'grant' } });
      await agent.handle(noticeFrame({ askApproval: false }).frame);
      await flush();
      expect(sink.frames.map((f) => f.type)).toEqual(['notice_received']);
      expect(agent.answerNotices(null, 'granted', 'carol')).toHaveLength(0);
    });

    it('starts without a prompt on an approval it holds, and prompts when it was revoked here', async () => {
      const { provider, asked } = manualConsent();
      const { agent, sink } = setup(provider, { preapproval: { answer: 'grant' } });
      const { noticeId, frame } = noticeFrame();
      await agent.handle(frame);
      await flush();
      await agent.handle(preApproved(noticeId));
      expect(asked).toHaveLength(0);
      expect(sink.frames.at(-2)).toMatchObject({ type: 'consent', outcome: 'pre_approved', answeredBy: 'alice' });
      expect(sink.frames.at(-1)).toMatchObject({ type: 'session_started' });

      agent.answerNotices(noticeId, 'revoked', 'alice');
      const second = agent.handle(preApproved(noticeId));
      await flush();
      expect(asked).toHaveLength(1);
      asked[0].answer('denied');
      await second;
      expect(sink.frames.at(-1)).toMatchObject({ type: 'consent', outcome: 'denied' });
    });

    it('prompts for an approval it never saw, or one outside its window', async () => {
      const { provider, asked } = manualConsent();
      const { agent } = setup(provider, { preapproval: { answer: 'grant' } });
      const later = noticeFrame({ windowStart: new Date(Date.now() + 600_000).toISOString() });
      await agent.handle(later.frame);
      await flush();
      for (const id of [randomUUID(), later.noticeId]) {
        const run = agent.handle(preApproved(id));
        await flush();
        asked.at(-1)!.answer('granted');
        await run;
      }
      expect(asked).toHaveLength(2);
    });

    it('sends the answers still open again after a reconnection', async () => {
      const { agent, sink } = setup(undefined, { preapproval: { answer: 'deny' } });
      const { noticeId, frame } = noticeFrame();
      await agent.handle(frame);
      await flush();
      sink.frames.length = 0;
      await agent.handle(serverFrame({ v: 1, type: 'welcome', deviceId: randomUUID(), heartbeatSeconds: 30 }));
      expect(sink.frames).toEqual([{ v: 1, type: 'preapproval', noticeId, decision: 'denied', answeredBy: 'alice' }]);
    });
  });
});
