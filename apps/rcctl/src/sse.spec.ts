import { ApiError, ConnectionError } from './api-client';
import { SseParser, followStream, type SseMessage } from './sse';

const feed = (chunks: string[]) => {
  const p = new SseParser();
  const out: SseMessage[] = [];
  for (const c of chunks) out.push(...p.push(c));
  return { out, parser: p };
};

describe('SseParser', () => {
  const stream = 'id: 7\nevent: session.active\ndata: {"a":1}\n\n: heartbeat\n\nid: 8\nevent: session.ended\ndata: {"b":2}\n\n';
  const expected = [
    { id: '7', event: 'session.active', data: '{"a":1}' },
    { id: '8', event: 'session.ended', data: '{"b":2}' },
  ];

  it('parses whole messages', () => {
    expect(feed([stream]).out).toEqual(expected);
  });

  it('gives the same messages however the bytes are split (every split point, and one character at a time)', () => {
    for (let i = 0; i <= stream.length; i++) expect(feed([stream.slice(0, i), stream.slice(i)]).out).toEqual(expected);
    expect(feed(stream.split('')).out).toEqual(expected);
  });

  it('treats CRLF and CR as line ends, also when CR and LF arrive in different chunks', () => {
    const crlf = stream.replace(/\n/g, '\r\n');
    for (let i = 0; i <= crlf.length; i++) expect(feed([crlf.slice(0, i), crlf.slice(i)]).out).toEqual(expected);
    expect(feed([stream.replace(/\n/g, '\r')]).out).toEqual(expected);
  });

  it('joins multi-line data with newlines and keeps a value without the space after the colon', () => {
    expect(feed(['data: one\ndata:two\ndata:  three\n\n']).out).toEqual([{ id: null, event: 'message', data: 'one\ntwo\n three' }]);
  });

  it('dispatches nothing for comments or a message without data, but remembers its id', () => {
    const { out, parser } = feed([': hello\n\nid: 41\n\n:\n\n']);
    expect(out).toEqual([]);
    expect(parser.lastEventId).toBe('41');
    expect(feed(['id: 41\n\ndata: x\n\n']).out).toEqual([{ id: '41', event: 'message', data: 'x' }]);
  });

  it('resets the event name after each message, ignores unknown fields, reads retry', () => {
    const { out, parser } = feed(['event: a\ndata: 1\n\nfoo: bar\ndata: 2\n\nretry: 2500\nretry: soon\n']);
    expect(out).toEqual([
      { id: null, event: 'a', data: '1' },
      { id: null, event: 'message', data: '2' },
    ]);
    expect(parser.retryMs).toBe(2500);
  });

  it('does not dispatch a message whose blank line has not arrived', () => {
    expect(feed(['id: 1\ndata: partial\n']).out).toEqual([]);
  });
});

/** A fetch that answers each call with the next of `answers` and records the requests. */
function scriptedFetch(answers: (() => Response | Promise<Response>)[]) {
  const calls: { url: string; headers: Record<string, string> }[] = [];
  const impl = (async (url: string, init: RequestInit) => {
    calls.push({ url, headers: init.headers as Record<string, string> });
    const next = answers.shift();
    if (!next) throw new Error('no more answers');
    return next();
  }) as unknown as typeof fetch;
  return { impl, calls };
}

const sse =
  (text: string, status = 200) =>
  () =>
    new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode(text));
          c.close();
        },
      }),
      { status, headers: { 'content-type': 'text/event-stream' } },
    );

describe('followStream', () => {
  const noSleep = async () => undefined;

  it('reconnects after the server closes, sending the last event id it handled, and backs off', async () => {
    const stop = new AbortController();
    const got: string[] = [];
    const delays: number[] = [];
    const { impl, calls } = scriptedFetch([
      sse('id: 1\ndata: a\n\nid: 2\ndata: b\n\n'),
      () => Promise.reject(new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } })),
      sse('id: 3\ndata: c\n\n'),
    ]);
    await followStream({
      baseUrl: 'http://x',
      path: '/v1/events?sessionId=s',
      headers: { authorization: 'Bearer k' },
      signal: stop.signal,
      fetchImpl: impl,
      sleep: async (ms) => {
        delays.push(ms);
      },
      onMessage: (m) => {
        got.push(m.data);
        if (m.data === 'c') stop.abort();
      },
    });
    expect(got).toEqual(['a', 'b', 'c']);
    expect(calls.map((c) => c.headers['last-event-id'])).toEqual([undefined, '2', '2']);
    expect(calls[0].headers.authorization).toBe('Bearer k');
    expect(calls[0].url).toBe('http://x/v1/events?sessionId=s');
    expect(delays).toEqual([500, 1000]);
  });

  it('starts from a given Last-Event-ID', async () => {
    const stop = new AbortController();
    const { impl, calls } = scriptedFetch([sse('id: 10\ndata: x\n\n')]);
    await followStream({
      baseUrl: 'http://x',
      path: '/e',
      headers: {},
      lastEventId: '9',
      signal: stop.signal,
      fetchImpl: impl,
      sleep: noSleep,
      onMessage: () => stop.abort(),
    });
    expect(calls[0].headers['last-event-id']).toBe('9');
  });

  it('throws the API error of a 4xx instead of retrying', async () => {
    const { impl, calls } = scriptedFetch([
      () => new Response(JSON.stringify({ error: { status: 403, code: 'forbidden', message: 'no' } }), { status: 403 }),
    ]);
    const p = followStream({
      baseUrl: 'http://x',
      path: '/e',
      headers: {},
      signal: new AbortController().signal,
      fetchImpl: impl,
      sleep: noSleep,
      onMessage: () => undefined,
    });
    await expect(p).rejects.toEqual(new ApiError(403, 'forbidden', 'no'));
    expect(calls).toHaveLength(1);
  });

  it('retries a 503 and a 429', async () => {
    const stop = new AbortController();
    const { impl, calls } = scriptedFetch([
      () => new Response('{"error":{"status":503,"code":"shutting_down","message":"bye"}}', { status: 503 }),
      () => new Response('{"error":{"status":429,"code":"rate_limited","message":"slow"}}', { status: 429 }),
      sse('id: 1\ndata: ok\n\n'),
    ]);
    const statuses: string[] = [];
    await followStream({
      baseUrl: 'http://x',
      path: '/e',
      headers: {},
      signal: stop.signal,
      fetchImpl: impl,
      sleep: noSleep,
      onStatus: (s) => statuses.push(s.kind === 'lost' ? `lost: ${s.reason}` : `open ${s.attempt}`),
      onMessage: () => stop.abort(),
    });
    expect(calls).toHaveLength(3);
    expect(statuses).toEqual(['lost: 503 shutting_down — bye', 'lost: 429 rate_limited — slow', 'open 3']);
  });

  it('names the URL when the first connection cannot reach the server', async () => {
    const { impl } = scriptedFetch([() => Promise.reject(new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } }))]);
    const p = followStream({
      baseUrl: 'http://h:1',
      path: '/e',
      headers: {},
      signal: new AbortController().signal,
      fetchImpl: impl,
      sleep: noSleep,
      onMessage: () => undefined,
    });
    await expect(p).rejects.toEqual(new ConnectionError('http://h:1', 'connection refused'));
  });

  it("ends with the handler's error rather than taking it for a dropped connection", async () => {
    const { impl, calls } = scriptedFetch([sse('data: a\n\n'), sse('data: b\n\n')]);
    const p = followStream({
      baseUrl: 'http://x',
      path: '/e',
      headers: {},
      signal: new AbortController().signal,
      fetchImpl: impl,
      sleep: noSleep,
      onMessage: () => {
        throw new Error('boom');
      },
    });
    await expect(p).rejects.toThrow('boom');
    expect(calls).toHaveLength(1);
  });

  it('reconnects when the connection stays silent longer than the idle timeout', async () => {
    const stop = new AbortController();
    const silent = () =>
      new Response(new ReadableStream({ start: () => undefined }), { status: 200, headers: { 'content-type': 'text/event-stream' } });
    const { impl, calls } = scriptedFetch([silent, sse('id: 5\ndata: x\n\n')]);
    const reasons: string[] = [];
    await followStream({
      baseUrl: 'http://x',
      path: '/e',
      headers: {},
      signal: stop.signal,
      fetchImpl: impl,
      sleep: noSleep,
      idleTimeoutMs: 50,
      onStatus: (s) => s.kind === 'lost' && reasons.push(s.reason),
      onMessage: () => stop.abort(),
    });
    expect(calls).toHaveLength(2);
    expect(reasons).toEqual(['no data for 1 s']);
  });
});
