import { EventEmitter } from 'node:events';
import type { Response } from 'express';
import { EventStream, sseEvent } from './event-stream';
import type { EventRow } from './events-filter';

const ME = '00000000-0000-4000-8000-0000000000c1';
const SESSION = '00000000-0000-4000-8000-0000000000a1';
const OTHER = '00000000-0000-4000-8000-0000000000a2';

/** What a stream writes, as an HTTP answer would take it. */
class FakeResponse extends EventEmitter {
  chunks: string[] = [];
  headers: Record<string, string> = {};
  statusCode = 0;
  writableEnded = false;
  writableLength = 0;
  writableNeedDrain = false;
  destroyed = false;
  socket = null;
  status(code: number) {
    this.statusCode = code;
    return this;
  }
  setHeader(name: string, value: string) {
    this.headers[name.toLowerCase()] = value;
  }
  flushed = false;
  flushHeaders() {
    this.flushed = true;
  }
  write(chunk: string) {
    this.chunks.push(chunk);
    return true;
  }
  end() {
    this.writableEnded = true;
  }
  destroy() {
    this.destroyed = true;
  }
  /** The ids of the events written, in order. */
  ids() {
    return this.chunks.filter((c) => c.startsWith('id: ')).map((c) => /^id: (\d+)/.exec(c)![1]);
  }
}

const row = (id: number, sessionId = SESSION): EventRow => ({
  tail_id: String(id),
  id: String(id),
  stream: `session:${sessionId}`,
  seq: id,
  occurred_at: new Date(Date.UTC(2026, 10, 29, 12, 0, id)),
  actor_id: null,
  actor_kind: 'system',
  action: 'session.active',
  outcome: 'active',
  session_id: sessionId,
  device_id: null,
  viewer_id: ME,
  ticket_ref: null,
  reason: null,
  data: { n: id },
  hash: 'h',
  device_collections: [],
  session_requester: ME,
  session_viewer: ME,
});

function stream(filter = {}) {
  const res = new FakeResponse();
  const s = new EventStream(ME, {}, res as unknown as Response, filter, { principalId: ME, scope: [] });
  return { res, s };
}

describe('an event stream', () => {
  it('writes each event as id, event (the action) and data (the audit list item), one line each', () => {
    expect(sseEvent(row(7))).toBe(
      `id: 7\nevent: session.active\ndata: ${JSON.stringify({
        id: '7',
        stream: `session:${SESSION}`,
        seq: 7,
        occurredAt: '2026-11-29T12:00:07.000Z',
        actor: { id: null, kind: 'system' },
        action: 'session.active',
        outcome: 'active',
        sessionId: SESSION,
        deviceId: null,
        viewerId: ME,
        ticketRef: null,
        reason: null,
        data: { n: 7 },
        hash: 'h',
      })}\n\n`,
    );
  });

  it('holds live events while catching up, then writes the replay, then the held ones above the join position, then live ones', async () => {
    const { res, s } = stream();
    s.deliver([row(11), row(12)]); // arrived before the join position was known
    s.joined('11', '5');
    s.open();
    expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(res.flushed).toBe(true);
    expect(res.chunks[0]).toBe('retry: 3000\n\n');
    s.deliver([row(13)]);
    await s.replay([row(6), row(9), row(11)]);
    s.goLive();
    s.deliver([row(14)]);
    expect(res.ids()).toEqual(['6', '9', '11', '12', '13', '14']);
  });

  it('resuming after an id above the join position (another process was ahead) skips what the client had', () => {
    const { res, s } = stream();
    s.joined('10', '13');
    s.open();
    s.deliver([row(11), row(12)]);
    s.goLive();
    s.deliver([row(13), row(14)]);
    expect(res.ids()).toEqual(['14']);
  });

  it('shows only what passes the filters and access', () => {
    const { res, s } = stream({ sessionId: OTHER });
    s.joined('0');
    s.open();
    s.goLive();
    s.deliver([row(1), row(2, OTHER), { ...row(3, OTHER), session_requester: null, session_viewer: null }]);
    expect(res.ids()).toEqual(['2']);
  });

  it('ends once: the answer ends, the listeners run, nothing more is written', () => {
    const { res, s } = stream();
    const ended = jest.fn();
    s.onEnd(ended);
    s.joined('0');
    s.open();
    s.goLive();
    s.end();
    s.end();
    s.deliver([row(1)]);
    s.heartbeat();
    expect(ended).toHaveBeenCalledTimes(1);
    expect(res.writableEnded).toBe(true);
    expect(res.chunks).toEqual(['retry: 3000\n\n']);
  });

  it('leaves the answer alone when it ends before opening (the error goes out with the error shape)', () => {
    const { res, s } = stream();
    s.end();
    expect(res.writableEnded).toBe(false);
    expect(res.chunks).toEqual([]);
  });

  it('ends when the client goes away', () => {
    const { res, s } = stream();
    const ended = jest.fn();
    s.onEnd(ended);
    res.emit('close');
    expect(s.isEnded).toBe(true);
    expect(ended).toHaveBeenCalledTimes(1);
  });
});
