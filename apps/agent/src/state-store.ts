import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { agentMessageSchema, parseCredential } from '@rcflow/agent-protocol';
import { remoteToolsFullSchema, SESSION_TYPES, ACCESS_MODES, type RemoteToolsSettings } from '@rcflow/domain';
import type { Command, Outbound } from './protocol-types';

export interface Enrolment {
  deviceId: string;
  /** `rcd_…`: a secret; never logged. */
  credential: string;
  hostname: string;
  server: string;
  enrolledAt: string;
}

export interface ActiveSession {
  sessionId: string;
  commandId: string;
  viewer: string;
  sessionType: (typeof SESSION_TYPES)[number];
  access: (typeof ACCESS_MODES)[number];
  startedAt: string;
}

/** A notice of a session booked ahead, and the user's answer to its ask for pre-approval. */
export interface StoredNotice {
  noticeId: string;
  sessionId: string | null;
  scheduleId: string | null;
  windowStart: string;
  windowEnd: string;
  viewer: string;
  sessionType: (typeof SESSION_TYPES)[number];
  access: (typeof ACCESS_MODES)[number];
  reason: string | null;
  approval: 'not_asked' | 'pending' | 'granted' | 'denied' | 'revoked';
  answeredBy: string | null;
  answeredAt: string | null;
}

/** Notices kept past their window's end (a late start_session may still name one), then dropped. */
export const NOTICE_KEEP_MS = 24 * 3_600_000;

/**
 * Everything an agent must remember. Methods are synchronous: the reference agent writes a few
 * small files per command, and a synchronous write makes "persisted before answered" trivially
 * true.
 */
export interface AgentStateStore {
  enrolment(): Enrolment | null;
  saveEnrolment(enrolment: Enrolment): void;
  appliedSettingsHash(): string | null;
  appliedSettings(): RemoteToolsSettings | null;
  saveSettings(settings: RemoteToolsSettings, versionHash: string): void;
  /** The frames sent the first time this command was answered, if it was. */
  answerOf(commandId: string): Outbound[] | undefined;
  recordAnswer(commandId: string, type: Command['type'], frames: Outbound[]): void;
  activeSessions(): ActiveSession[];
  saveActiveSession(session: ActiveSession): void;
  removeActiveSession(sessionId: string): boolean;
  notices(): StoredNotice[];
  notice(noticeId: string): StoredNotice | undefined;
  /** Stores or replaces a notice; notices past their window by NOTICE_KEEP_MS are dropped. */
  saveNotice(notice: StoredNotice): void;
}

export const DEFAULT_MAX_ANSWERED = 1000;

interface AnsweredEntry {
  type: Command['type'];
  frames: Outbound[];
  at: string;
}

/** Insertion-ordered and bounded: the oldest answers go first, since redelivery comes soon or never. */
class AnsweredCommands {
  readonly entries = new Map<string, AnsweredEntry>();
  constructor(private readonly max: number) {}

  get(commandId: string) {
    return this.entries.get(commandId);
  }

  set(commandId: string, entry: AnsweredEntry) {
    this.entries.delete(commandId);
    this.entries.set(commandId, entry);
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }
}

/** In-memory state: for the simulator's virtual agents and for tests. */
export class MemoryStateStore implements AgentStateStore {
  private enrolled: Enrolment | null = null;
  private hash: string | null = null;
  private settings: RemoteToolsSettings | null = null;
  private readonly answered: AnsweredCommands;
  private readonly sessions = new Map<string, ActiveSession>();
  private readonly noticesById = new Map<string, StoredNotice>();
  private readonly keepSettings: boolean;

  /** keepSettings false keeps only the hash, for fleets of thousands where nobody reads the values. */
  constructor(options: { maxAnswered?: number; keepSettings?: boolean; enrolment?: Enrolment } = {}) {
    this.answered = new AnsweredCommands(options.maxAnswered ?? DEFAULT_MAX_ANSWERED);
    this.keepSettings = options.keepSettings ?? true;
    this.enrolled = options.enrolment ?? null;
  }

  enrolment() {
    return this.enrolled;
  }
  saveEnrolment(enrolment: Enrolment) {
    this.enrolled = enrolment;
  }
  appliedSettingsHash() {
    return this.hash;
  }
  appliedSettings() {
    return this.settings;
  }
  saveSettings(settings: RemoteToolsSettings, versionHash: string) {
    this.hash = versionHash;
    if (this.keepSettings) this.settings = settings;
  }
  answerOf(commandId: string) {
    return this.answered.get(commandId)?.frames;
  }
  recordAnswer(commandId: string, type: Command['type'], frames: Outbound[]) {
    this.answered.set(commandId, { type, frames, at: new Date().toISOString() });
  }
  activeSessions() {
    return [...this.sessions.values()];
  }
  saveActiveSession(session: ActiveSession) {
    this.sessions.set(session.sessionId, session);
  }
  removeActiveSession(sessionId: string) {
    return this.sessions.delete(sessionId);
  }
  notices() {
    return [...this.noticesById.values()];
  }
  notice(noticeId: string) {
    return this.noticesById.get(noticeId);
  }
  saveNotice(notice: StoredNotice) {
    keepNotice(this.noticesById, notice);
  }
}

function keepNotice(notices: Map<string, StoredNotice>, notice: StoredNotice): void {
  notices.set(notice.noticeId, notice);
  const cutoff = Date.now() - NOTICE_KEEP_MS;
  for (const [id, n] of notices) if (Date.parse(n.windowEnd) < cutoff) notices.delete(id);
}

const enrolmentFile = z.object({
  deviceId: z.string().min(1),
  credential: z.string().refine((c) => parseCredential(c, 'rcd') !== null, 'is not a device credential'),
  hostname: z.string().min(1),
  server: z.string(),
  enrolledAt: z.string(),
});
const settingsFile = z.object({ versionHash: z.string().regex(/^[0-9a-f]{64}$/), settings: remoteToolsFullSchema, appliedAt: z.string() });
const commandsFile = z.object({
  answered: z.array(
    z.object({
      commandId: z.string(),
      type: z.enum(['apply_settings', 'start_session', 'end_session', 'session_notice']),
      frames: z.array(agentMessageSchema),
      at: z.string(),
    }),
  ),
});
const sessionsFile = z.object({
  active: z.array(
    z.object({
      sessionId: z.string(),
      commandId: z.string(),
      viewer: z.string(),
      sessionType: z.enum(SESSION_TYPES),
      access: z.enum(ACCESS_MODES),
      startedAt: z.string(),
    }),
  ),
});

const noticesFile = z.object({
  notices: z.array(
    z.object({
      noticeId: z.string(),
      sessionId: z.string().nullable(),
      scheduleId: z.string().nullable(),
      windowStart: z.string(),
      windowEnd: z.string(),
      viewer: z.string(),
      sessionType: z.enum(SESSION_TYPES),
      access: z.enum(ACCESS_MODES),
      reason: z.string().nullable(),
      approval: z.enum(['not_asked', 'pending', 'granted', 'denied', 'revoked']),
      answeredBy: z.string().nullable(),
      answeredAt: z.string().nullable(),
    }),
  ),
});

/** Writes temp + fsync + rename, so a crash leaves the old file or the new one, never half of one. */
export function writeFileAtomic(file: string, data: string, mode = 0o600): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = fs.openSync(tmp, 'w', mode);
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  // The rename is durable only once the directory entry is; not every platform lets us fsync one.
  try {
    const dir = fs.openSync(path.dirname(file), 'r');
    try {
      fs.fsyncSync(dir);
    } finally {
      fs.closeSync(dir);
    }
  } catch {
    /* best effort */
  }
}

/** State kept as small JSON files in the state directory (mode 0700, files 0600). */
export class FileStateStore implements AgentStateStore {
  private enrolled: Enrolment | null;
  private settings: z.infer<typeof settingsFile> | null;
  private readonly answered: AnsweredCommands;
  private readonly sessions = new Map<string, ActiveSession>();
  private readonly noticesById = new Map<string, StoredNotice>();
  private lockFile: string | null = null;

  constructor(
    readonly dir: string,
    options: { maxAnswered?: number } = {},
  ) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.enrolled = this.load('enrolment.json', enrolmentFile);
    this.settings = this.load('settings.json', settingsFile);
    this.answered = new AnsweredCommands(options.maxAnswered ?? DEFAULT_MAX_ANSWERED);
    for (const entry of this.load('commands.json', commandsFile)?.answered ?? []) {
      this.answered.set(entry.commandId, { type: entry.type, frames: entry.frames as unknown as Outbound[], at: entry.at });
    }
    for (const session of this.load('sessions.json', sessionsFile)?.active ?? []) this.sessions.set(session.sessionId, session);
    for (const notice of this.load('notices.json', noticesFile)?.notices ?? []) this.noticesById.set(notice.noticeId, notice);
  }

  private file(name: string) {
    return path.join(this.dir, name);
  }

  private load<T>(name: string, schema: z.ZodType<T>): T | null {
    let text: string;
    try {
      text = fs.readFileSync(this.file(name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error(`state file ${this.file(name)} is not valid JSON; move it aside to start over`);
    }
    const r = schema.safeParse(parsed);
    // Never echo the content: enrolment.json holds the credential.
    if (!r.success) throw new Error(`state file ${this.file(name)} is not in the expected shape; move it aside to start over`);
    return r.data;
  }

  private write(name: string, value: unknown) {
    writeFileAtomic(this.file(name), `${JSON.stringify(value, null, 1)}\n`);
  }

  /**
   * Two agents on one state directory would each apply commands the other already answered, so
   * the directory is taken with a pid lock; a lock left by a dead process is taken over.
   */
  lock(): void {
    const file = this.file('agent.lock');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
        this.lockFile = file;
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const pid = Number(fs.readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new Error(`another agent (pid ${pid}) is using the state directory ${this.dir}`);
      }
      fs.rmSync(file, { force: true });
    }
    throw new Error(`could not lock the state directory ${this.dir}`);
  }

  unlock(): void {
    if (this.lockFile) fs.rmSync(this.lockFile, { force: true });
    this.lockFile = null;
  }

  enrolment() {
    return this.enrolled;
  }
  saveEnrolment(enrolment: Enrolment) {
    this.write('enrolment.json', enrolment);
    this.enrolled = enrolment;
  }
  appliedSettingsHash() {
    return this.settings?.versionHash ?? null;
  }
  appliedSettings() {
    return this.settings?.settings ?? null;
  }
  saveSettings(settings: RemoteToolsSettings, versionHash: string) {
    const next = { versionHash, settings, appliedAt: new Date().toISOString() };
    this.write('settings.json', next);
    this.settings = next;
  }
  answerOf(commandId: string) {
    return this.answered.get(commandId)?.frames;
  }
  recordAnswer(commandId: string, type: Command['type'], frames: Outbound[]) {
    this.answered.set(commandId, { type, frames, at: new Date().toISOString() });
    this.write('commands.json', {
      answered: [...this.answered.entries].map(([id, e]) => ({ commandId: id, type: e.type, frames: e.frames, at: e.at })),
    });
  }
  activeSessions() {
    return [...this.sessions.values()];
  }
  saveActiveSession(session: ActiveSession) {
    this.sessions.set(session.sessionId, session);
    this.writeSessions();
  }
  removeActiveSession(sessionId: string) {
    if (!this.sessions.delete(sessionId)) return false;
    this.writeSessions();
    return true;
  }
  private writeSessions() {
    this.write('sessions.json', { active: [...this.sessions.values()] });
  }
  notices() {
    return [...this.noticesById.values()];
  }
  notice(noticeId: string) {
    return this.noticesById.get(noticeId);
  }
  saveNotice(notice: StoredNotice) {
    keepNotice(this.noticesById, notice);
    this.write('notices.json', { notices: [...this.noticesById.values()] });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
