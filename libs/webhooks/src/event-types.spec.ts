import { EVENT_TYPE_PATTERN, matchesEventType } from './event-types';

describe('event type matching', () => {
  it.each([
    [['session.active'], 'session.active', true],
    [['session.active'], 'session.ended', false],
    [['session.*'], 'session.active', true],
    [['session.*'], 'session', false],
    [['session.*'], 'sessions.active', false],
    [['session.*'], 'session_x.active', false],
    [['*'], 'collection.created', true],
    [['webhook.*', 'session.ended'], 'session.ended', true],
    [[], 'session.active', false],
  ])('%j hears %s: %s', (patterns, action, hears) => {
    expect(matchesEventType(patterns, action)).toBe(hears);
  });

  it('accepts names, prefixes and * only', () => {
    for (const ok of ['*', 'session.active', 'session.*', 'ticket_integration.writeback_redriven', 'a.b.*'])
      expect(EVENT_TYPE_PATTERN.test(ok)).toBe(true);
    for (const bad of [
      '',
      'Session.active',
      'session.',
      '.active',
      'session.**',
      'session*',
      'a..b',
      'session.*.x',
      ' session.active',
      '*.*',
    ])
      expect(EVENT_TYPE_PATTERN.test(bad)).toBe(false);
  });
});
