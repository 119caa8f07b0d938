import type { DataSource } from 'typeorm';
import type { AuditEntry } from '@rcflow/audit';
import { loadConfig } from '@rcflow/config';
import { UpgradeRefusals } from './upgrade-refusals';

const mockWritten: AuditEntry[][] = [];
jest.mock('@rcflow/audit', () => ({
  appendAudit: async (_tx: unknown, _key: string, entries: AuditEntry[]) => {
    mockWritten.push(entries);
    return new Map();
  },
}));

/** A DataSource whose transactions fail while `down` is set. */
function fakeDataSource() {
  const state = { down: false };
  const ds = {
    transaction: async (fn: (tx: unknown) => Promise<unknown>) => {
      if (state.down) throw new Error('connection refused');
      return fn({});
    },
  } as unknown as DataSource;
  return { ds, state };
}

const config = loadConfig({ PGLITE_DIR: 'memory', AUDIT_HMAC_KEY: 'refusals-spec-key-0123456789abcdef01234' });
const unknown = { refused: 'unknown device credential', stream: 'agent-auth:unknown', deviceId: null };
const limited = { refused: 'rate limited', stream: 'agent-auth:unknown', deviceId: null };
const revoked = { refused: 'device credential revoked', stream: 'device:d1', deviceId: 'd1' };

describe('UpgradeRefusals', () => {
  beforeEach(() => {
    mockWritten.length = 0;
  });

  it('writes one event per source and stream for a window, with the count and every reason', async () => {
    const { ds } = fakeDataSource();
    const refusals = new UpgradeRefusals(ds, config);
    for (let i = 0; i < 398; i++) refusals.record('192.0.2.1', unknown);
    refusals.record('192.0.2.1', limited);
    refusals.record('192.0.2.1', revoked);
    refusals.record('198.51.100.2', unknown);
    await refusals.flush();
    expect(mockWritten).toHaveLength(1);
    expect(mockWritten[0].map((e) => [e.stream, e.deviceId, e.data])).toEqual([
      [
        'agent-auth:unknown',
        null,
        expect.objectContaining({
          remote: '192.0.2.1',
          count: 399,
          reason: 'unknown device credential',
          reasons: { 'unknown device credential': 398, 'rate limited': 1 },
        }),
      ],
      ['device:d1', 'd1', expect.objectContaining({ remote: '192.0.2.1', count: 1 })],
      ['agent-auth:unknown', null, expect.objectContaining({ remote: '198.51.100.2', count: 1 })],
    ]);
    await refusals.flush();
    expect(mockWritten).toHaveLength(1);
  });

  it('keeps the counts when the database cannot take them, and writes them with the next window', async () => {
    const { ds, state } = fakeDataSource();
    const refusals = new UpgradeRefusals(ds, config);
    state.down = true;
    refusals.record('192.0.2.1', unknown);
    refusals.record('192.0.2.1', unknown);
    await refusals.flush();
    expect(mockWritten).toHaveLength(0);
    state.down = false;
    refusals.record('192.0.2.1', unknown);
    await refusals.flush();
    expect(mockWritten.flat().map((e) => e.data?.count)).toEqual([3]);
  });
});
