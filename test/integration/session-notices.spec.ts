import { randomUUID } from 'node:crypto';
import IORedis from 'ioredis';
import { DataSource } from 'typeorm';
import { AgentCommand } from '../../libs/agent-protocol/src';
import { AgentBusScripts, InboxEntry, LoopbackAgentLink, RedisAgentLink, agentBusKeys } from '../../libs/agent-link/src';
import { verifyAudit } from '../../libs/audit/src';
import { RcflowConfig, loadConfig } from '../../libs/config/src';
import { createDataSource } from '../../libs/database/src';
import { redisOptionsFromUrl } from '../../libs/jobs/src';
import { SessionTransitions } from '../../libs/sessions/src';
import { AdvanceSessionHandler } from '../../libs/workflow/src/handlers/advance-session.handler';
import { SessionNoticeHandler } from '../../libs/workflow/src/notices/session-notice.handler';
import { PreapprovalAnswers } from '../../apps/api/src/agents/preapproval-answers.service';
import { TEST_AUDIT_KEY, freshDatabase, queuePrefix } from '../support/env';
import { requestSession, seedWorld } from '../support/fixtures';
import { PrivateRedis } from '../support/redis-server';

jest.setTimeout(60_000);

/**
 * What the user at a device is told ahead of a booked session, on a real PostgreSQL and Redis: the
 * worker's SessionNoticeHandler sends through RedisAgentLink to an "API" that drains the device's
 * inbox with the gateway's scripts and answers as the agent (or stays silent); the gateway's
 * PreapprovalAnswers records the user's answers; the consent step honours a granted one.
 */
describe('session notices and pre-approval on PostgreSQL and Redis', () => {
  let ds: DataSource;
  let config: RcflowConfig;
  let redis: PrivateRedis;
  const clients: IORedis[] = [];
  let handler: SessionNoticeHandler;
  /** Every command the "API" took off an inbox, as the agent received it. */
  const received: { deviceId: string; command: AgentCommand }[] = [];
  /** Devices whose agent never answers. */
  const silent = new Set<string>();

  const client = () => {
    const c = new IORedis({ ...redisOptionsFromUrl(redis.url), maxRetriesPerRequest: 3 });
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    config = loadConfig({ DATABASE_URL: await freshDatabase('notices'), AUDIT_HMAC_KEY: TEST_AUDIT_KEY, SETTINGS_ACK_TIMEOUT_MS: '500' });
    ds = createDataSource(config.database);
    await ds.initialize();
    const keys = agentBusKeys(queuePrefix('notices'));
    const api = new AgentBusScripts(client(), keys);
    const deliver = async (deviceId: string) => {
      for (;;) {
        const { entries, remaining } = await api.drain(deviceId, Date.now());
        for (const raw of entries) {
          const { command } = JSON.parse(raw) as InboxEntry;
          received.push({ deviceId, command });
          if (command.type === 'session_notice' && !silent.has(deviceId)) {
            await api.reply(
              deviceId,
              command.commandId,
              JSON.stringify({ v: 1, type: 'notice_received', commandId: command.commandId, noticeId: command.noticeId }),
            );
          }
        }
        if (remaining === 0) return;
      }
    };
    const sub = client();
    sub.on('message', (_channel: string, deviceId: string) => void deliver(deviceId));
    await sub.subscribe(keys.notify);
    handler = new SessionNoticeHandler(ds, new RedisAgentLink(client(), client(), keys), config);
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await ds?.destroy();
    await redis?.stop();
  });

  type World = Awaited<ReturnType<typeof seedWorld>>;
  /** A booked session, `scheduled` as intake stores one with a reminder. */
  const book = async (world: World, opts: { inMs?: number; notAfterMs?: number | null; askApproval?: boolean; type?: string } = {}) => {
    const id = await requestSession(ds, world, { type: opts.type });
    const notBefore = new Date(Date.now() + (opts.inMs ?? 600_000));
    const notAfter = opts.notAfterMs ? new Date(notBefore.getTime() + opts.notAfterMs) : null;
    await ds.query(
      `UPDATE sessions SET state = 'scheduled', not_before = $2, not_after = $3, remind_minutes = 15, ask_approval = $4 WHERE id = $1`,
      [id, notBefore, notAfter, opts.askApproval ?? true],
    );
    return { id, notBefore, notAfter };
  };
  const notices = (where: string, params: unknown[]) =>
    ds.query<Record<string, any>[]>(`SELECT * FROM session_notices WHERE ${where} ORDER BY device_id`, params);
  const events = (noticeId: string) =>
    ds.query<Record<string, any>[]>(
      `SELECT action, outcome, reason, session_id, device_id, actor_kind, data FROM audit_events WHERE stream = $1 ORDER BY seq`,
      [`notice:${noticeId}`],
    );
  const sentTo = (deviceId: string) => received.filter((r) => r.deviceId === deviceId && r.command.type === 'session_notice');

  it('tells the device of a booking once, however often the job runs, and asks where the settings prompt', async () => {
    const world = await seedWorld(ds); // settings: permission required
    const { id, notBefore } = await book(world);
    const job = { sessionId: id, scheduleId: null, at: null } as const;
    await handler.handle(job);
    await Promise.all([handler.handle(job), handler.handle(job)]);

    const [n, ...more] = await notices('session_id = $1', [id]);
    expect(more).toHaveLength(0);
    expect(n).toMatchObject({ device_id: world.deviceId, state: 'delivered', approval: 'pending', ask_approval: true });
    // No latest start: the window is the booked start and an hour after it.
    expect(new Date(n.window_start).getTime()).toBe(notBefore.getTime());
    expect(new Date(n.window_end).getTime()).toBe(notBefore.getTime() + 3_600_000);
    expect(n.delivered_at).not.toBeNull();

    expect(sentTo(world.deviceId).map((r) => r.command)).toEqual([
      {
        v: 1,
        type: 'session_notice',
        commandId: `notice:${n.id}`,
        noticeId: n.id,
        sessionId: id,
        scheduleId: null,
        windowStart: notBefore.toISOString(),
        windowEnd: new Date(notBefore.getTime() + 3_600_000).toISOString(),
        viewer: world.viewerName,
        sessionType: 'remote-control',
        access: 'full',
        reason: null,
        askApproval: true,
      },
    ]);
    expect(await events(n.id)).toEqual([
      expect.objectContaining({
        action: 'session.notice_delivered',
        outcome: 'delivered',
        session_id: id,
        device_id: world.deviceId,
        actor_kind: 'system',
        data: expect.objectContaining({ noticeId: n.id, approval: 'pending' }),
      }),
    ]);
  });

  it('only reminds when the booking does not ask, or the settings would not prompt; the window ends at notAfter', async () => {
    const world = await seedWorld(ds);
    const plain = await book(world, { askApproval: false, notAfterMs: 30 * 60_000 });
    await handler.handle({ sessionId: plain.id, scheduleId: null, at: null });
    const [n] = await notices('session_id = $1', [plain.id]);
    expect(n).toMatchObject({ state: 'delivered', approval: 'not_asked', ask_approval: false });
    expect(new Date(n.window_end).getTime()).toBe(plain.notAfter!.getTime());

    const noPrompt = await seedWorld(ds);
    await ds.query(
      `UPDATE client_settings SET remote_tools = remote_tools || '{"permissionRequired": false}'
        WHERE id IN (SELECT settings_id FROM settings_deployments WHERE collection_id = $1)`,
      [noPrompt.collectionId],
    );
    const asked = await book(noPrompt, { askApproval: true });
    await handler.handle({ sessionId: asked.id, scheduleId: null, at: null });
    expect((await notices('session_id = $1', [asked.id]))[0]).toMatchObject({ approval: 'not_asked' });
    expect(sentTo(noPrompt.deviceId).at(-1)?.command).toMatchObject({ askApproval: false });
  });

  it('skips a booking no longer scheduled, and one whose window has passed', async () => {
    const world = await seedWorld(ds);
    const cancelled = await book(world);
    await ds.query(`UPDATE sessions SET state = 'cancelled' WHERE id = $1`, [cancelled.id]);
    await handler.handle({ sessionId: cancelled.id, scheduleId: null, at: null });
    await handler.handle({ sessionId: randomUUID(), scheduleId: null, at: null });
    const past = await book(world, { inMs: -2 * 3_600_000 });
    await handler.handle({ sessionId: past.id, scheduleId: null, at: null });
    expect(await notices('session_id = ANY($1)', [[cancelled.id, past.id]])).toEqual([]);
    expect(sentTo(world.deviceId)).toEqual([]);
  });

  it('marks a notice undeliverable, once, when the device is offline or its agent does not acknowledge', async () => {
    const offline = await seedWorld(ds);
    await ds.query(`UPDATE devices SET last_heartbeat_at = now() - interval '1 hour' WHERE id = $1`, [offline.deviceId]);
    const a = await book(offline);
    await handler.handle({ sessionId: a.id, scheduleId: null, at: null });
    await handler.handle({ sessionId: a.id, scheduleId: null, at: null });
    const [na] = await notices('session_id = $1', [a.id]);
    expect(na).toMatchObject({ state: 'undeliverable', delivered_at: null });
    expect(sentTo(offline.deviceId)).toEqual([]);
    expect(await events(na.id)).toEqual([
      expect.objectContaining({ action: 'session.notice_undeliverable', reason: 'the device is offline', device_id: offline.deviceId }),
    ]);

    const mute = await seedWorld(ds);
    silent.add(mute.deviceId);
    const b = await book(mute);
    await handler.handle({ sessionId: b.id, scheduleId: null, at: null });
    const [nb] = await notices('session_id = $1', [b.id]);
    expect(nb.state).toBe('undeliverable');
    expect((await events(nb.id)).map((e) => e.reason)).toEqual(['the agent did not acknowledge within 500 ms']);
    // Not retried: a second run sends nothing more.
    await handler.handle({ sessionId: b.id, scheduleId: null, at: null });
    expect(sentTo(mute.deviceId)).toHaveLength(1);
  });

  describe('an occurrence of a schedule', () => {
    const schedule = async (world: World, target: { deviceIds?: string[]; collectionId?: string }, state = 'active') => {
      const [row] = await ds.query(
        `INSERT INTO schedules (name, owner_id, spec, device_ids, collection_id, type, access, reason, remind_minutes, ask_approval, state)
         VALUES ($1, $2, $3, $4, $5, 'remote-control', 'full', 'patching', 30, true, $6) RETURNING id`,
        [
          `s-${randomUUID()}`,
          world.viewerId,
          JSON.stringify({ cron: '0 2 * * 2', timeZone: 'Europe/Amsterdam', startsAt: '2026-01-01T00:00:00Z', windowMinutes: 30 }),
          target.deviceIds ?? null,
          target.collectionId ?? null,
          state,
        ],
      );
      return row.id as string;
    };
    const at = () => new Date(Date.now() + 600_000).toISOString();

    it("tells every device of the schedule's collection as it is now, window [at, at + windowMinutes], once", async () => {
      const world = await seedWorld(ds);
      const second = await seedWorld(ds);
      await ds.query(`INSERT INTO collection_members (collection_id, device_id) VALUES ($1, $2)`, [world.collectionId, second.deviceId]);
      const id = await schedule(world, { collectionId: world.collectionId });
      const when = at();
      await handler.handle({ sessionId: null, scheduleId: id, at: when });
      await handler.handle({ sessionId: null, scheduleId: id, at: when });
      const rows = await notices('schedule_id = $1', [id]);
      expect(rows.map((r) => r.device_id).sort()).toEqual([world.deviceId, second.deviceId].sort());
      for (const r of rows) {
        expect(r).toMatchObject({ state: 'delivered', approval: 'pending', session_id: null });
        expect(new Date(r.occurrence_at).toISOString()).toBe(when);
        expect(new Date(r.window_end).getTime() - new Date(r.window_start).getTime()).toBe(30 * 60_000);
      }
      for (const d of [world.deviceId, second.deviceId]) {
        expect(sentTo(d).map((r) => r.command)).toEqual([
          expect.objectContaining({ scheduleId: id, sessionId: null, windowStart: when, viewer: world.viewerName, reason: 'patching' }),
        ]);
      }
    });

    it('skips a paused or deleted schedule; a listed device that was retired is left out', async () => {
      const world = await seedWorld(ds);
      const retired = await seedWorld(ds);
      await ds.query(`UPDATE devices SET retired = true WHERE id = $1`, [retired.deviceId]);
      for (const state of ['paused', 'deleted']) {
        const id = await schedule(world, { deviceIds: [world.deviceId] }, state);
        await handler.handle({ sessionId: null, scheduleId: id, at: at() });
        expect(await notices('schedule_id = $1', [id])).toEqual([]);
      }
      const id = await schedule(world, { deviceIds: [world.deviceId, retired.deviceId] });
      await handler.handle({ sessionId: null, scheduleId: id, at: at() });
      expect((await notices('schedule_id = $1', [id])).map((r) => r.device_id)).toEqual([world.deviceId]);
      expect(sentTo(retired.deviceId)).toEqual([]);
    });
  });

  describe("the user's answers, as the gateway records them", () => {
    let answers: PreapprovalAnswers;
    beforeAll(() => {
      answers = new PreapprovalAnswers(ds, config);
    });
    const delivered = async (world: World) => {
      const { id } = await book(world, { inMs: 60_000 });
      await handler.handle({ sessionId: id, scheduleId: null, at: null });
      return (await notices('session_id = $1', [id]))[0];
    };

    it('records a grant and its revoke with their audit events; a repeat changes nothing', async () => {
      const world = await seedWorld(ds);
      const n = await delivered(world);
      expect(await answers.answer(world.deviceId, { noticeId: n.id, decision: 'granted', answeredBy: 'carol' })).toEqual({
        recorded: true,
      });
      expect(await answers.answer(world.deviceId, { noticeId: n.id, decision: 'granted', answeredBy: 'carol' })).toEqual({
        recorded: false,
        repeat: true,
      });
      expect((await notices('id = $1', [n.id]))[0]).toMatchObject({ approval: 'granted', answered_by: 'carol' });
      expect(await answers.answer(world.deviceId, { noticeId: n.id, decision: 'revoked', answeredBy: 'carol' })).toEqual({
        recorded: true,
      });
      expect((await events(n.id)).map((e) => [e.action, e.device_id, e.session_id])).toEqual([
        ['session.notice_delivered', world.deviceId, n.session_id],
        ['session.preapproval_granted', world.deviceId, n.session_id],
        ['session.preapproval_revoked', world.deviceId, n.session_id],
      ]);
    });

    it("refuses another device's answer, a revoke of what was not granted, and an answer after the window; nothing changes", async () => {
      const world = await seedWorld(ds);
      const other = await seedWorld(ds);
      const n = await delivered(world);
      const before = await notices('id = $1', [n.id]);
      const eventsBefore = await events(n.id);
      expect(await answers.answer(other.deviceId, { noticeId: n.id, decision: 'granted', answeredBy: 'mallory' })).toMatchObject({
        recorded: false,
        refused: 'no such notice for this device',
      });
      expect(await answers.answer(world.deviceId, { noticeId: n.id, decision: 'revoked', answeredBy: 'carol' })).toMatchObject({
        refused: 'cannot be revoked when it is pending',
      });
      const late = new Date(new Date(n.window_end).getTime() + 1);
      expect(await answers.answer(world.deviceId, { noticeId: n.id, decision: 'granted', answeredBy: 'carol' }, late)).toMatchObject({
        refused: expect.stringMatching(/window ended/),
      });
      expect(await notices('id = $1', [n.id])).toEqual(before);
      expect(await events(n.id)).toEqual(eventsBefore);
    });
  });

  describe('the consent step', () => {
    const loopback = () => {
      const agent = new LoopbackAgentLink(config.agent.loopback);
      return { agent, advance: new AdvanceSessionHandler(ds, new SessionTransitions(ds, config), agent, config) };
    };
    /** A booking due now with its notice answered `approval`, its window [start, end] around now. */
    const due = async (approval: string, windowMs: [number, number] = [-60_000, 60_000]) => {
      const world = await seedWorld(ds);
      const id = await requestSession(ds, world);
      await ds.query(`UPDATE sessions SET not_before = now() - interval '1 second' WHERE id = $1`, [id]);
      const [n] = await ds.query(
        `INSERT INTO session_notices (device_id, session_id, window_start, window_end, ask_approval, state, approval, answered_by)
         VALUES ($1, $2, $3, $4, true, 'delivered', $5, 'carol') RETURNING id`,
        [world.deviceId, id, new Date(Date.now() + windowMs[0]), new Date(Date.now() + windowMs[1]), approval],
      );
      return { id, noticeId: n.id as string };
    };
    const active = async (id: string) =>
      (await ds.query(`SELECT outcome, data FROM audit_events WHERE stream = $1 ORDER BY seq DESC LIMIT 1`, [`session:${id}`]))[0];

    it('starts on a granted pre-approval inside its window, and says so', async () => {
      const { agent, advance } = loopback();
      const start = jest.spyOn(agent, 'startSession');
      const { id, noticeId } = await due('granted');
      await advance.handle(id, { final: true });
      expect(start.mock.calls[0][0]).toMatchObject({ consentRule: 'prompt_user', preApproval: { noticeId } });
      expect(await active(id)).toMatchObject({
        outcome: 'active',
        data: { consentRule: 'prompt_user', consent: 'pre_approved', consentBy: 'pre_approval', noticeId, answeredBy: 'carol' },
      });
    });

    it.each([
      ['revoked', 'revoked', [-60_000, 60_000]],
      ['outside its window', 'granted', [60_000, 120_000]],
      ['denied', 'denied', [-60_000, 60_000]],
    ] as const)('prompts when the pre-approval was %s', async (_, approval, windowMs) => {
      const { agent, advance } = loopback();
      const start = jest.spyOn(agent, 'startSession');
      const { id } = await due(approval, [...windowMs]);
      await advance.handle(id, { final: true });
      expect(start.mock.calls[0][0].preApproval).toBeUndefined();
      expect(await active(id)).toMatchObject({ outcome: 'active', data: { consent: 'granted', consentBy: 'prompt' } });
    });
  });

  it('keeps every audit chain verifiable', async () => {
    const r = await verifyAudit(ds, TEST_AUDIT_KEY);
    expect(r.problems).toEqual([]);
  });
});
