import { ValidationFailed } from '@rcflow/domain';
import { negotiateFormat, parseReportQuery } from './report-query';

const NOW = new Date('2026-11-30T12:00:00.000Z');
const DAY = 86_400_000;

/** The 400 a query gets, as { path, message } of its details; fails when the query is accepted. */
function refusal(query: Record<string, unknown>, maxSpanDays = 366) {
  try {
    parseReportQuery(query, maxSpanDays, NOW);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationFailed);
    const e = err as ValidationFailed;
    expect(e.status).toBe(400);
    return (e.details as { path: string; message: string }[]).map((d) => d.path);
  }
  throw new Error(`accepted ${JSON.stringify(query)}`);
}

describe('parseReportQuery', () => {
  it('defaults to the last 30 days, ending now', () => {
    const p = parseReportQuery({}, 366, NOW);
    expect(p.to.toISOString()).toBe(NOW.toISOString());
    expect(p.from.toISOString()).toBe(new Date(NOW.getTime() - 30 * DAY).toISOString());
    expect(p).not.toHaveProperty('format');
  });

  it('starts 30 days before a given end, and ends now after a given start', () => {
    expect(parseReportQuery({ to: '2026-10-31T00:00:00Z' }, 366, NOW).from.toISOString()).toBe('2026-10-01T00:00:00.000Z');
    expect(parseReportQuery({ from: '2026-10-01T00:00:00Z' }, 366, NOW).to.toISOString()).toBe(NOW.toISOString());
  });

  it('keeps the default range within a shorter maximum span', () => {
    const p = parseReportQuery({}, 7, NOW);
    expect(p.to.getTime() - p.from.getTime()).toBe(7 * DAY);
  });

  it('reads offsets as the instant they name', () => {
    const p = parseReportQuery({ from: '2026-10-01T02:00:00+02:00', to: '2026-10-02T00:00:00Z' }, 366, NOW);
    expect(p.from.toISOString()).toBe('2026-10-01T00:00:00.000Z');
  });

  it('passes the filters, the limit and the format through', () => {
    const id = '11111111-1111-4111-8111-111111111111';
    expect(parseReportQuery({ viewerId: id, deviceId: id, collectionId: id, limit: '5', format: 'csv' }, 366, NOW)).toMatchObject({
      viewerId: id,
      deviceId: id,
      collectionId: id,
      limit: 5,
      format: 'csv',
    });
  });

  it('refuses from after to, and from equal to to, naming from', () => {
    expect(refusal({ from: '2026-10-02T00:00:00Z', to: '2026-10-01T00:00:00Z' })).toEqual(['from']);
    expect(refusal({ from: '2026-10-01T00:00:00Z', to: '2026-10-01T00:00:00Z' })).toEqual(['from']);
  });

  it('accepts exactly the maximum span and refuses a millisecond more, naming the field', () => {
    expect(() => parseReportQuery({ from: '2025-10-01T00:00:00Z', to: '2025-10-08T00:00:00Z' }, 7, NOW)).not.toThrow();
    expect(refusal({ from: '2025-10-01T00:00:00Z', to: '2025-10-08T00:00:00.001Z' }, 7)).toEqual(['to']);
    // Only a start given, too long ago: the start is what to change.
    expect(refusal({ from: '2025-01-01T00:00:00Z' })).toEqual(['from']);
  });

  it.each([
    [{ from: 'yesterday' }, 'from'],
    [{ to: '2026-13-01T00:00:00Z' }, 'to'],
    [{ from: '2026-10-01' }, 'from'],
    [{ viewerId: 'alice' }, 'viewerId'],
    [{ deviceId: '1' }, 'deviceId'],
    [{ collectionId: "' OR 1=1 --" }, 'collectionId'],
    [{ limit: '0' }, 'limit'],
    [{ limit: '1001' }, 'limit'],
    [{ limit: 'ten' }, 'limit'],
    [{ format: 'xlsx' }, 'format'],
    [{ from: ['2026-10-01T00:00:00Z', '2026-10-02T00:00:00Z'] }, 'from'],
  ])('refuses %j naming %s', (query, field) => {
    expect(refusal(query)).toContain(field);
  });

  it('refuses a parameter it does not know', () => {
    expect(refusal({ sort: 'desc' })).toEqual(['query']);
  });
});

describe('negotiateFormat', () => {
  it('takes format first, then Accept, then JSON', () => {
    expect(negotiateFormat('ndjson', 'text/csv')).toBe('ndjson');
    expect(negotiateFormat(undefined, 'text/csv')).toBe('csv');
    expect(negotiateFormat(undefined, 'application/x-ndjson')).toBe('ndjson');
    expect(negotiateFormat(undefined, 'text/csv;q=0.9, */*')).toBe('csv');
    expect(negotiateFormat(undefined, '*/*')).toBe('json');
    expect(negotiateFormat(undefined, undefined)).toBe('json');
  });
});
