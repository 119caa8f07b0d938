import { Writable } from 'node:stream';
import { RcflowNestLogger, contextLogger, createLogger, installLogger, prettyWanted, rootLogger, type LogSettings } from './logging';

/** A destination that keeps the lines written to it, parsed. */
function memory() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { stream, lines };
}

const settings = (level: LogSettings['level'] = 'info'): LogSettings => ({ level, format: 'json', env: 'production', role: 'api' });

describe('prettyWanted', () => {
  it('follows LOG_FORMAT when set, else pretty only on a terminal outside production', () => {
    expect(prettyWanted({ format: 'json', env: 'development' }, true)).toBe(false);
    expect(prettyWanted({ format: 'pretty', env: 'production' }, false)).toBe(true);
    expect(prettyWanted({ format: 'auto', env: 'development' }, true)).toBe(true);
    expect(prettyWanted({ format: 'auto', env: 'test' }, true)).toBe(true);
    expect(prettyWanted({ format: 'auto', env: 'development' }, false)).toBe(false);
    expect(prettyWanted({ format: 'auto', env: 'production' }, true)).toBe(false);
  });
});

describe('createLogger', () => {
  it('writes JSON lines with the level by name and the role, and redacts secret-named fields', () => {
    const { stream, lines } = memory();
    const log = createLogger(settings(), stream);
    log.info({ sessionId: 's1', headers: { authorization: 'Bearer rcf_a.b', cookie: 'c=1' }, body: { apiKey: 'k', name: 'n' } }, 'hello');
    log.child({ context: 'X' }).warn({ viewerToken: 'tok' }, 'bound');
    log.debug('not at info');
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'info',
        role: 'api',
        msg: 'hello',
        sessionId: 's1',
        headers: { authorization: '[redacted]', cookie: '[redacted]' },
        body: { apiKey: '[redacted]', name: 'n' },
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      }),
      expect.objectContaining({ level: 'warn', viewerToken: '[redacted]', context: 'X', msg: 'bound' }),
    ]);
  });
});

describe('RcflowNestLogger', () => {
  afterEach(() => installLogger(createLogger(settings('silent'), memory().stream)));

  it("logs Nest's start-up chatter at debug and everything else at its level, with the context", () => {
    const { stream, lines } = memory();
    const nest = RcflowNestLogger.over(createLogger(settings('info'), stream));
    nest.log('Mapped {/v1/sessions, POST} route', 'RouterExplorer');
    nest.log('AppModule dependencies initialized', 'InstanceLoader');
    nest.log('api listening', 'rcflow');
    nest.warn('careful', 'Queue');
    expect(lines.map((l) => [l.level, l.context, l.msg])).toEqual([
      ['info', 'rcflow', 'api listening'],
      ['warn', 'Queue', 'careful'],
    ]);
  });

  it('shows the start-up chatter at LOG_LEVEL=debug', () => {
    const { stream, lines } = memory();
    RcflowNestLogger.over(createLogger(settings('debug'), stream)).log('Mapped route', 'RouterExplorer');
    expect(lines).toEqual([expect.objectContaining({ level: 'debug', context: 'RouterExplorer', msg: 'Mapped route' })]);
  });
});

describe('installLogger / contextLogger', () => {
  it('gives the libs children of the installed root, one per context, renewed when the root changes', () => {
    const a = memory();
    installLogger(createLogger(settings(), a.stream));
    const first = contextLogger('SessionTransitions');
    expect(contextLogger('SessionTransitions')).toBe(first);
    first.info('one');
    const b = memory();
    installLogger(createLogger(settings(), b.stream));
    contextLogger('SessionTransitions').info('two');
    expect(a.lines.map((l) => [l.context, l.msg])).toEqual([['SessionTransitions', 'one']]);
    expect(b.lines.map((l) => [l.context, l.msg])).toEqual([['SessionTransitions', 'two']]);
    expect(rootLogger().isLevelEnabled('info')).toBe(true);
  });
});
