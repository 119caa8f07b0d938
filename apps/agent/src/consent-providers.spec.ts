import { PassThrough } from 'node:stream';
import {
  consentQuestion,
  PolicyConsentProvider,
  PromptConsentProvider,
  RatioConsentProvider,
  type ConsentRequest,
} from './consent-providers';
import { LineConsole } from './terminal-console';

const request = (over: Partial<ConsentRequest> = {}): ConsentRequest => ({
  commandId: 'cmd-1',
  sessionId: '7c6760a4-bda6-4e44-a5fa-051ac2ca5fc6',
  viewer: 'alice',
  sessionType: 'remote-control',
  access: 'full',
  timeoutMs: 60_000,
  loggedOnUser: 'carol',
  ...over,
});

describe('PolicyConsentProvider', () => {
  it('accept grants in the logged-on user name', async () => {
    await expect(new PolicyConsentProvider('accept').ask(request())).resolves.toEqual({ outcome: 'granted', answeredBy: 'carol' });
  });

  it('deny denies in the logged-on user name', async () => {
    await expect(new PolicyConsentProvider('deny').ask(request())).resolves.toEqual({ outcome: 'denied', answeredBy: 'carol' });
  });

  it('none never answers, so the request times out after timeoutMs', async () => {
    jest.useFakeTimers();
    try {
      let answer: unknown = null;
      void new PolicyConsentProvider('none').ask(request({ timeoutMs: 5000 })).then((a) => (answer = a));
      await jest.advanceTimersByTimeAsync(4999);
      expect(answer).toBeNull();
      await jest.advanceTimersByTimeAsync(1);
      expect(answer).toEqual({ outcome: 'timed_out', answeredBy: null });
    } finally {
      jest.useRealTimers();
    }
  });

  it('none stops waiting when the request is withdrawn', async () => {
    const withdraw = new AbortController();
    const answer = new PolicyConsentProvider('none').ask(request({ signal: withdraw.signal }));
    withdraw.abort();
    await expect(answer).resolves.toEqual({ outcome: 'timed_out', answeredBy: null });
  });
});

describe('RatioConsentProvider', () => {
  it('maps the draw onto the shares', async () => {
    const shares = { accept: 0.8, deny: 0.1, timeout: 0.1 };
    const ask = (x: number) => new RatioConsentProvider(shares, () => x).ask(request({ timeoutMs: 100 }));
    expect((await ask(0.1)).outcome).toBe('granted');
    expect((await ask(0.85)).outcome).toBe('denied');
    expect((await ask(0.95)).outcome).toBe('timed_out');
  });
});

describe('PromptConsentProvider', () => {
  function terminal() {
    const input = new PassThrough();
    const output = new PassThrough();
    let written = '';
    output.on('data', (chunk: Buffer) => (written += chunk.toString('utf8')));
    const console = new LineConsole(input, output);
    return { input, console, written: () => written, provider: new PromptConsentProvider(console, () => 'terminal-user') };
  }

  it('asks the question and grants on y', async () => {
    const t = terminal();
    const answer = t.provider.ask(request());
    await new Promise((r) => setImmediate(r));
    expect(t.written()).toBe('alice asks to remote-control this computer (full control). Allow? [y/N] (times out in 60 s) ');
    t.input.write('y\n');
    await expect(answer).resolves.toEqual({ outcome: 'granted', answeredBy: 'carol' });
    t.console.close();
  });

  it.each(['yes', ' Y '])('grants on %j', async (line) => {
    const t = terminal();
    const answer = t.provider.ask(request());
    t.input.write(`${line}\n`);
    await expect(answer).resolves.toMatchObject({ outcome: 'granted' });
    t.console.close();
  });

  it.each(['n', '', 'maybe'])('denies on %j', async (line) => {
    const t = terminal();
    const answer = t.provider.ask(request());
    t.input.write(`${line}\n`);
    await expect(answer).resolves.toEqual({ outcome: 'denied', answeredBy: 'carol' });
    t.console.close();
  });

  it('times out on silence', async () => {
    const t = terminal();
    await expect(t.provider.ask(request({ timeoutMs: 100 }))).resolves.toEqual({ outcome: 'timed_out', answeredBy: null });
    expect(t.written()).toContain('timed out');
    t.console.close();
  });

  it('names the person at the terminal when no logged-on user is known', async () => {
    const t = terminal();
    const answer = t.provider.ask(request({ loggedOnUser: null }));
    t.input.write('y\n');
    await expect(answer).resolves.toEqual({ outcome: 'granted', answeredBy: 'terminal-user' });
    t.console.close();
  });

  it('asks one question at a time, each within its own deadline', async () => {
    const t = terminal();
    const first = t.provider.ask(request({ viewer: 'alice' }));
    const second = t.provider.ask(request({ viewer: 'dave' }));
    t.input.write('y\n');
    await expect(first).resolves.toMatchObject({ outcome: 'granted' });
    await new Promise((r) => setImmediate(r));
    expect(t.written()).toContain('dave asks');
    t.input.write('n\n');
    await expect(second).resolves.toMatchObject({ outcome: 'denied' });
    t.console.close();
  });

  it('times a queued question out on time while another is shown', async () => {
    const t = terminal();
    const first = t.provider.ask(request({ viewer: 'alice', timeoutMs: 5000 }));
    const started = Date.now();
    await expect(t.provider.ask(request({ viewer: 'dave', timeoutMs: 100 }))).resolves.toMatchObject({ outcome: 'timed_out' });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(t.written()).not.toContain('dave asks');
    t.input.write('y\n');
    await expect(first).resolves.toMatchObject({ outcome: 'granted' });
    t.console.close();
  });

  it('withdraws a question when the request is aborted', async () => {
    const t = terminal();
    const withdraw = new AbortController();
    const answer = t.provider.ask(request({ signal: withdraw.signal }));
    withdraw.abort();
    await expect(answer).resolves.toEqual({ outcome: 'timed_out', answeredBy: null });
    expect(t.written()).toContain('withdrawn');
    t.console.close();
  });

  it('sends lines typed while no question is open to onLine', async () => {
    const t = terminal();
    const lines: string[] = [];
    t.console.onLine = (line) => lines.push(line);
    t.input.write('end\n');
    await new Promise((r) => setImmediate(r));
    expect(lines).toEqual(['end']);
    t.console.close();
  });
});

describe('LineConsole on a terminal', () => {
  /** Streams that claim to be a TTY, so readline reads keys raw as it does at a real terminal. */
  function tty() {
    const input = Object.assign(new PassThrough(), { isTTY: true, isRaw: false, setRawMode: () => input });
    const output = Object.assign(new PassThrough(), { isTTY: true, columns: 80 });
    let written = '';
    output.on('data', (chunk: Buffer) => (written += chunk.toString('utf8')));
    const console = new LineConsole(input, output);
    return { input, console, written: () => written };
  }

  it('hands Ctrl-C to onInterrupt on the first press and keeps reading, so a later y still answers', async () => {
    const t = tty();
    const interrupts: number[] = [];
    t.console.onInterrupt = () => interrupts.push(1);
    const answer = t.console.ask('Allow? [y/N]', 60_000);
    t.input.write('\x03');
    await new Promise((r) => setImmediate(r));
    expect(interrupts).toHaveLength(1);
    t.input.write('y\r');
    await expect(answer).resolves.toBe('y');
    t.console.close();
  });

  it('keeps reading after Ctrl-D on an empty line, so the answer typed next is not lost', async () => {
    const t = tty();
    const answer = t.console.ask('Allow? [y/N]', 60_000);
    t.input.write('\x04');
    await new Promise((r) => setImmediate(r));
    t.input.write('y\r');
    await expect(answer).resolves.toBe('y');
    t.console.close();
  });

  it('close answers every open and queued question null at once, with the note after the one shown', async () => {
    const t = tty();
    const first = t.console.ask('First?', 60_000);
    const second = t.console.ask('Second?', 60_000);
    t.console.close('(agent stopped (Ctrl-C): answered no)');
    await expect(first).resolves.toBeNull();
    await expect(second).resolves.toBeNull();
    expect(t.written()).toContain('(agent stopped (Ctrl-C): answered no)');
    expect(t.written()).not.toContain('Second?');
    await expect(t.console.ask('Third?', 60_000)).resolves.toBeNull();
  });
});

describe('consentQuestion', () => {
  it('words the other session types and view-only access', () => {
    expect(consentQuestion({ viewer: 'bob', sessionType: 'remote-assistance', access: 'view', timeoutMs: 1500 })).toBe(
      'bob asks to offer remote assistance to this computer (view only). Allow? [y/N] (times out in 2 s)',
    );
  });
});
