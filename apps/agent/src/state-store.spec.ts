import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { formatCredential } from '@rcflow/agent-protocol';
import { PolicyConsentProvider } from './consent-providers';
import { DeviceAgent } from './device-agent';
import { memoryLogger, silentLogger } from './logger';
import { FileStateStore, MemoryStateStore, writeFileAtomic, type Enrolment } from './state-store';
import { applySettings, collectingSink, FACTS, serverFrame, SETTINGS, SETTINGS_HASH, startSession } from './testing/fixtures';

const credential = formatCredential('rcd', randomUUID(), 'a'.repeat(43));
const enrolment: Enrolment = {
  deviceId: randomUUID(),
  credential,
  hostname: 'pc-1',
  server: 'http://127.0.0.1:3000',
  enrolledAt: new Date().toISOString(),
};

describe('FileStateStore', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcflow-agent-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('starts empty', () => {
    const store = new FileStateStore(path.join(dir, 'state'));
    expect(store.enrolment()).toBeNull();
    expect(store.appliedSettingsHash()).toBeNull();
    expect(store.answerOf('x')).toBeUndefined();
    expect(store.activeSessions()).toEqual([]);
  });

  it('gives a new instance on the same directory the credential, settings, answers and sessions', async () => {
    const first = new FileStateStore(dir);
    first.saveEnrolment(enrolment);
    const agent = new DeviceAgent({
      store: first,
      consent: new PolicyConsentProvider('accept'),
      facts: () => FACTS,
      viewerEndpoint: { host: 'h', port: 1 },
      log: silentLogger,
    });
    agent.attach(collectingSink());
    await agent.handle(serverFrame(applySettings('cmd-1')));
    const start = startSession({ commandId: 'cmd-2' });
    await agent.handle(serverFrame(start));

    const second = new FileStateStore(dir);
    expect(second.enrolment()).toEqual(enrolment);
    expect(second.appliedSettingsHash()).toBe(SETTINGS_HASH);
    expect(second.appliedSettings()).toEqual(SETTINGS);
    expect(second.answerOf('cmd-1')).toEqual([{ v: 1, type: 'settings_applied', commandId: 'cmd-1', versionHash: SETTINGS_HASH }]);
    expect(second.answerOf('cmd-2')?.map((f) => f.type)).toEqual(['consent', 'session_started']);
    expect(second.activeSessions().map((s) => s.sessionId)).toEqual([start.sessionId]);

    // An agent restarted on that state answers a redelivered command from it, without applying it again.
    const log = memoryLogger();
    const restarted = new DeviceAgent({
      store: second,
      consent: new PolicyConsentProvider('deny'),
      facts: () => FACTS,
      viewerEndpoint: { host: 'h', port: 1 },
      log,
    });
    const sink = collectingSink();
    restarted.attach(sink);
    const save = jest.spyOn(second, 'saveSettings');
    await restarted.handle(serverFrame(applySettings('cmd-1')));
    await restarted.handle(serverFrame(start));
    expect(save).not.toHaveBeenCalled();
    expect(sink.frames.map((f) => f.type)).toEqual(['settings_applied', 'consent', 'session_started']);
    expect(sink.frames[1]).toMatchObject({ outcome: 'granted' });
    expect(log.lines[0]).toContain('restored 1 active session');
  });

  it('keeps files private and leaves no temporary files behind', () => {
    const store = new FileStateStore(dir);
    store.saveEnrolment(enrolment);
    store.saveSettings(SETTINGS, SETTINGS_HASH);
    expect(fs.statSync(path.join(dir, 'enrolment.json')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(dir).mode & 0o077).toBe(0);
    expect(fs.readdirSync(dir).sort()).toEqual(['enrolment.json', 'settings.json']);
  });

  it('bounds the answered commands, forgetting the oldest first, across restarts', () => {
    const store = new FileStateStore(dir, { maxAnswered: 3 });
    for (const id of ['a', 'b', 'c', 'd']) store.recordAnswer(id, 'end_session', []);
    const reopened = new FileStateStore(dir, { maxAnswered: 3 });
    expect(reopened.answerOf('a')).toBeUndefined();
    expect(['b', 'c', 'd'].map((id) => reopened.answerOf(id))).toEqual([[], [], []]);
  });

  it('refuses a corrupt file without echoing it', () => {
    fs.writeFileSync(path.join(dir, 'enrolment.json'), `{"credential":"${credential}"`);
    expect(() => new FileStateStore(dir)).toThrow(/enrolment.json is not valid JSON/);
    fs.writeFileSync(path.join(dir, 'enrolment.json'), JSON.stringify({ credential }));
    let message = '';
    try {
      new FileStateStore(dir);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/not in the expected shape/);
    expect(message).not.toContain(credential);
  });

  it('lets one agent at a time use a directory, and takes over a lock left by a dead process', () => {
    const a = new FileStateStore(dir);
    a.lock();
    fs.writeFileSync(path.join(dir, 'agent.lock'), `${process.ppid}\n`);
    expect(() => new FileStateStore(dir).lock()).toThrow(/another agent/);
    fs.writeFileSync(path.join(dir, 'agent.lock'), '999999999\n');
    const b = new FileStateStore(dir);
    expect(() => b.lock()).not.toThrow();
    b.unlock();
    expect(fs.existsSync(path.join(dir, 'agent.lock'))).toBe(false);
  });

  it('writes atomically: a rename that fails leaves the target as it was and no temporary file', () => {
    const file = path.join(dir, 'x.json');
    writeFileAtomic(file, 'old');
    expect(fs.readFileSync(file, 'utf8')).toBe('old');
    // A non-empty directory in the way makes the rename fail.
    const blocked = path.join(dir, 'blocked');
    fs.mkdirSync(blocked);
    fs.writeFileSync(path.join(blocked, 'keep'), 'k');
    expect(() => writeFileAtomic(blocked, 'new')).toThrow();
    expect(fs.readdirSync(dir).sort()).toEqual(['blocked', 'x.json']);
    expect(fs.readdirSync(blocked)).toEqual(['keep']);
  });
});

describe('MemoryStateStore', () => {
  it('can keep only the settings hash', () => {
    const store = new MemoryStateStore({ keepSettings: false });
    store.saveSettings(SETTINGS, SETTINGS_HASH);
    expect(store.appliedSettingsHash()).toBe(SETTINGS_HASH);
    expect(store.appliedSettings()).toBeNull();
  });

  it('bounds the answered commands', () => {
    const store = new MemoryStateStore({ maxAnswered: 2 });
    for (const id of ['a', 'b', 'c']) store.recordAnswer(id, 'end_session', []);
    expect(store.answerOf('a')).toBeUndefined();
    expect(store.answerOf('c')).toEqual([]);
  });
});

describe('notices in the state directory', () => {
  it('keeps approvals across a restart, and drops notices a day past their window', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rcflow-agent-notices-'));
    try {
      const notice = (noticeId: string, windowEnd: string) => ({
        noticeId,
        sessionId: randomUUID(),
        scheduleId: null,
        windowStart: new Date(Date.parse(windowEnd) - 60_000).toISOString(),
        windowEnd,
        viewer: 'bob',
        sessionType: 'remote-control' as const,
        access: 'full' as const,
        reason: null,
        approval: 'granted' as const,
        answeredBy: 'carol',
        answeredAt: new Date().toISOString(),
      });
      const first = new FileStateStore(dir);
      first.saveNotice(notice('old', new Date(Date.now() - 25 * 3_600_000).toISOString()));
      first.saveNotice(notice('new', new Date(Date.now() + 3_600_000).toISOString()));
      expect(fs.statSync(path.join(dir, 'notices.json')).mode & 0o777).toBe(0o600);
      const second = new FileStateStore(dir);
      expect(second.notices().map((n) => n.noticeId)).toEqual(['new']);
      expect(second.notice('new')).toMatchObject({ approval: 'granted', answeredBy: 'carol' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
