import { createHash } from 'crypto';
import {
  canonicalJson,
  CONFIGMGR_DEFAULT_REMOTE_TOOLS,
  mergeSettings,
  REMOTE_TOOLS_SETTING_KEYS,
  remoteToolsFullSchema,
  remoteToolsPartialSchema,
  settingsVersionHash,
} from './settings';
import type { RemoteToolsSettings, SettingsSet } from './types';

const defaultSet = (overrides: Partial<RemoteToolsSettings> = {}): SettingsSet => ({
  id: 'default',
  name: 'Default Client Settings',
  order: 10000,
  isDefault: true,
  remoteTools: { ...CONFIGMGR_DEFAULT_REMOTE_TOOLS, ...overrides },
});

const custom = (id: string, order: number, remoteTools: Partial<RemoteToolsSettings>): SettingsSet => ({
  id,
  name: `Set ${id}`,
  order,
  isDefault: false,
  remoteTools,
});

describe('CONFIGMGR_DEFAULT_REMOTE_TOOLS', () => {
  it('holds the ConfigMgr defaults', () => {
    expect(CONFIGMGR_DEFAULT_REMOTE_TOOLS).toEqual({
      enabled: false,
      firewallExceptionProfiles: [],
      allowClientChange: false,
      allowRemCtrlToUnattended: true,
      permissionRequired: true,
      clipboardPermissionRequired: true,
      allowLocalAdminToDoRemoteControl: true,
      accessLevel: 'full',
      permittedViewers: [],
      remCtrlTaskbarIcon: true,
      remCtrlConnectionBar: true,
      audibleSignal: 'begin_end',
      manageUnsolicitedRA: false,
      manageSolicitedRA: false,
      remoteAssistanceLevel: 'none',
      manageTS: false,
      enableTS: false,
      tsUserAuthentication: false,
    });
  });

  it('is frozen, arrays included, and valid against the full schema', () => {
    expect(Object.isFrozen(CONFIGMGR_DEFAULT_REMOTE_TOOLS)).toBe(true);
    expect(Object.isFrozen(CONFIGMGR_DEFAULT_REMOTE_TOOLS.permittedViewers)).toBe(true);
    expect(Object.isFrozen(CONFIGMGR_DEFAULT_REMOTE_TOOLS.firewallExceptionProfiles)).toBe(true);
    expect(remoteToolsFullSchema.safeParse(CONFIGMGR_DEFAULT_REMOTE_TOOLS).success).toBe(true);
  });

  it('REMOTE_TOOLS_SETTING_KEYS lists its 18 keys', () => {
    expect([...REMOTE_TOOLS_SETTING_KEYS].sort()).toEqual(Object.keys(CONFIGMGR_DEFAULT_REMOTE_TOOLS).sort());
    expect(REMOTE_TOOLS_SETTING_KEYS).toHaveLength(18);
  });
});

describe('canonicalJson', () => {
  it('sorts object keys recursively and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, 1, { z: 1, y: 2 }], c: 'x' } })).toBe('{"a":{"c":"x","d":[3,1,{"y":2,"z":1}]},"b":1}');
  });

  it('is independent of key insertion order', () => {
    expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson({ b: 2, a: 1 }));
  });

  it('sorts keys by code unit, not locale', () => {
    expect(canonicalJson({ b: 1, B: 2, a: 3, _: 4 })).toBe('{"B":2,"_":4,"a":3,"b":1}');
  });

  it('writes primitives like JSON.stringify', () => {
    expect(canonicalJson(null)).toBe('null');
    expect(canonicalJson(true)).toBe('true');
    expect(canonicalJson(1.5)).toBe('1.5');
    expect(canonicalJson('a"b\n')).toBe(JSON.stringify('a"b\n'));
    expect(canonicalJson(Number.NaN)).toBe('null');
    expect(canonicalJson([])).toBe('[]');
    expect(canonicalJson({})).toBe('{}');
  });

  it('drops undefined members, writes undefined array items as null, honours toJSON', () => {
    expect(canonicalJson({ a: undefined, b: [undefined, 1] })).toBe('{"b":[null,1]}');
    expect(canonicalJson({ when: new Date('2024-01-02T03:04:05.000Z') })).toBe('{"when":"2024-01-02T03:04:05.000Z"}');
  });

  it('escapes keys', () => {
    expect(canonicalJson({ 'a"b': 1 })).toBe('{"a\\"b":1}');
  });

  it('throws for values JSON cannot represent', () => {
    expect(() => canonicalJson(undefined)).toThrow(TypeError);
    expect(() => canonicalJson(() => 1)).toThrow(TypeError);
    expect(() => canonicalJson({ a: BigInt(1) })).toThrow(TypeError);
  });

  it('says what it cannot serialize', () => {
    expect(() => canonicalJson(undefined)).toThrow(new TypeError('cannot serialize undefined as JSON'));
    expect(() => canonicalJson(() => 1)).toThrow(new TypeError('cannot serialize function as JSON'));
    expect(() => canonicalJson({ a: [BigInt(1)] })).toThrow(new TypeError('cannot serialize bigint as JSON'));
  });
});

describe('mergeSettings', () => {
  it('returns the default values, all from the default set, when there are no custom sets', () => {
    const result = mergeSettings([defaultSet()]);
    expect(result.values).toEqual(CONFIGMGR_DEFAULT_REMOTE_TOOLS);
    for (const key of REMOTE_TOOLS_SETTING_KEYS) {
      expect(result.provenance[key]).toEqual({ setId: 'default', setName: 'Default Client Settings', order: 10000 });
    }
  });

  it('lets custom sets override field by field, the lowest order winning, with provenance per key', () => {
    const sets = [
      defaultSet({ permittedViewers: ['DefaultViewers'] }),
      custom('high', 5, { enabled: false, accessLevel: 'view', audibleSignal: 'none' }),
      custom('low', 1, { enabled: true, permittedViewers: ['HELPDESK'] }),
      custom('mid', 3, { accessLevel: 'full', permissionRequired: false }),
    ];
    const result = mergeSettings(sets);
    expect(result.values).toEqual({
      ...CONFIGMGR_DEFAULT_REMOTE_TOOLS,
      enabled: true,
      permittedViewers: ['HELPDESK'],
      accessLevel: 'full',
      permissionRequired: false,
      audibleSignal: 'none',
    });
    expect(result.provenance.enabled).toEqual({ setId: 'low', setName: 'Set low', order: 1 });
    expect(result.provenance.permittedViewers).toEqual({ setId: 'low', setName: 'Set low', order: 1 });
    expect(result.provenance.accessLevel).toEqual({ setId: 'mid', setName: 'Set mid', order: 3 });
    expect(result.provenance.permissionRequired).toEqual({ setId: 'mid', setName: 'Set mid', order: 3 });
    expect(result.provenance.audibleSignal).toEqual({ setId: 'high', setName: 'Set high', order: 5 });
    const fromDefault = REMOTE_TOOLS_SETTING_KEYS.filter(
      (k) => !['enabled', 'permittedViewers', 'accessLevel', 'permissionRequired', 'audibleSignal'].includes(k),
    );
    expect(fromDefault).toHaveLength(13);
    for (const key of fromDefault) expect(result.provenance[key].setId).toBe('default');
  });

  it('puts the default set last whatever its order number', () => {
    const def = { ...defaultSet(), order: 0 };
    const result = mergeSettings([def, custom('c', 100, { enabled: true })]);
    expect(result.values.enabled).toBe(true);
    expect(result.provenance.enabled.setId).toBe('c');
    expect(result.provenance.accessLevel).toEqual({ setId: 'default', setName: 'Default Client Settings', order: 0 });
  });

  it('breaks ties on order by id', () => {
    const result = mergeSettings([
      defaultSet(),
      custom('b', 2, { accessLevel: 'view' }),
      custom('a', 2, { accessLevel: 'none' }),
      custom('c', 2, { accessLevel: 'full', enabled: true }),
    ]);
    expect(result.values.accessLevel).toBe('none');
    expect(result.provenance.accessLevel.setId).toBe('a');
    expect(result.provenance.enabled.setId).toBe('c');
  });

  it('gives the same result whatever the input order', () => {
    const sets = [
      defaultSet(),
      custom('b', 2, { accessLevel: 'view', permittedViewers: ['x'] }),
      custom('a', 2, { accessLevel: 'none' }),
      custom('z', 1, { permittedViewers: ['y', 'z'], enabled: true }),
      custom('m', 7, { enabled: false, manageTS: true }),
    ];
    const reference = mergeSettings(sets);
    const permutations = [
      [...sets].reverse(),
      [sets[2], sets[0], sets[4], sets[1], sets[3]],
      [sets[3], sets[1], sets[4], sets[2], sets[0]],
    ];
    for (const permutation of permutations) expect(mergeSettings(permutation)).toEqual(reference);
    expect(reference.values.permittedViewers).toEqual(['y', 'z']);
    expect(reference.values.accessLevel).toBe('none');
    expect(reference.values.manageTS).toBe(true);
  });

  it('replaces lists with the winning set, never unions them', () => {
    const result = mergeSettings([
      defaultSet({ permittedViewers: ['a', 'b'], firewallExceptionProfiles: ['domain', 'private'] }),
      custom('c1', 1, { permittedViewers: ['c'] }),
      custom('c2', 2, { permittedViewers: ['d'], firewallExceptionProfiles: ['public'] }),
    ]);
    expect(result.values.permittedViewers).toEqual(['c']);
    expect(result.values.firewallExceptionProfiles).toEqual(['public']);
    expect(result.provenance.firewallExceptionProfiles.setId).toBe('c2');
  });

  it('lets an empty list win over a longer one', () => {
    const result = mergeSettings([defaultSet({ permittedViewers: ['a'] }), custom('c', 1, { permittedViewers: [] })]);
    expect(result.values.permittedViewers).toEqual([]);
    expect(result.provenance.permittedViewers.setId).toBe('c');
  });

  it('treats false and "none" as configured values, undefined as not configured', () => {
    const result = mergeSettings([
      defaultSet({ enabled: true, remoteAssistanceLevel: 'full' }),
      custom('c', 1, { enabled: false, remoteAssistanceLevel: 'none', manageTS: undefined }),
    ]);
    expect(result.values.enabled).toBe(false);
    expect(result.values.remoteAssistanceLevel).toBe('none');
    expect(result.provenance.manageTS.setId).toBe('default');
  });

  it('ignores unknown keys in a set', () => {
    const result = mergeSettings([defaultSet(), custom('c', 1, { bogus: true } as unknown as Partial<RemoteToolsSettings>)]);
    expect(Object.keys(result.values).sort()).toEqual([...REMOTE_TOOLS_SETTING_KEYS].sort());
  });

  it('does not share arrays with its input', () => {
    const viewers = ['a'];
    const result = mergeSettings([defaultSet(), custom('c', 1, { permittedViewers: viewers })]);
    viewers.push('b');
    expect(result.values.permittedViewers).toEqual(['a']);
    expect(() => result.values.firewallExceptionProfiles.push('domain')).not.toThrow();
  });

  it('throws when there is no default set', () => {
    expect(() => mergeSettings([custom('c', 1, { ...CONFIGMGR_DEFAULT_REMOTE_TOOLS })])).toThrow(/no default/);
    expect(() => mergeSettings([])).toThrow(/no default/);
  });

  it('throws when there are two default sets', () => {
    expect(() => mergeSettings([defaultSet(), { ...defaultSet(), id: 'default2' }])).toThrow(/default2/);
  });

  it('throws naming every key the default set lacks', () => {
    const { enabled: _enabled, accessLevel: _accessLevel, ...rest } = CONFIGMGR_DEFAULT_REMOTE_TOOLS;
    const incomplete: SettingsSet = { ...defaultSet(), remoteTools: rest };
    expect(() => mergeSettings([incomplete])).toThrow(Error);
    expect(() => mergeSettings([incomplete])).toThrow(/enabled.*accessLevel|accessLevel.*enabled/);
  });

  it('throws when the default set has a key set to undefined', () => {
    expect(() => mergeSettings([defaultSet({ manageTS: undefined })])).toThrow(/manageTS/);
  });

  it('says in its messages what is wrong with the sets', () => {
    expect(() => mergeSettings([])).toThrow(new Error('no default settings set: exactly one set must have isDefault true'));
    expect(() => mergeSettings([defaultSet(), { ...defaultSet(), id: 'default2' }])).toThrow(
      new Error('2 default settings sets (default, default2): exactly one is allowed'),
    );
    const { enabled: _enabled, accessLevel: _accessLevel, ...rest } = CONFIGMGR_DEFAULT_REMOTE_TOOLS;
    expect(() => mergeSettings([{ ...defaultSet(), remoteTools: rest }])).toThrow(
      new Error('default settings set default lacks keys: enabled, accessLevel'),
    );
    expect(() => mergeSettings([defaultSet(), custom('c', 1, {}), custom('c', 2, {})])).toThrow(new Error('duplicate settings set id c'));
  });

  it('throws on duplicate set ids', () => {
    expect(() => mergeSettings([defaultSet(), custom('c', 1, {}), custom('c', 2, {})])).toThrow(/duplicate.*c/);
  });
});

describe('versionHash', () => {
  const hashOf = (overrides: Partial<RemoteToolsSettings>) => mergeSettings([defaultSet(overrides)]).versionHash;

  it('is the sha256 hex of the canonical JSON of the values', () => {
    const result = mergeSettings([defaultSet({ permittedViewers: ['b', 'a'] })]);
    const expected = createHash('sha256')
      .update(canonicalJson({ ...result.values, permittedViewers: ['a', 'b'] }))
      .digest('hex');
    expect(result.versionHash).toMatch(/^[0-9a-f]{64}$/);
    expect(result.versionHash).toBe(expected);
    expect(settingsVersionHash(result.values)).toBe(expected);
  });

  it('is stable under reordering of viewers and firewall profiles', () => {
    expect(hashOf({ permittedViewers: ['alice', 'HELPDESK', 'bob'] })).toBe(hashOf({ permittedViewers: ['bob', 'alice', 'HELPDESK'] }));
    expect(hashOf({ firewallExceptionProfiles: ['public', 'domain'] })).toBe(hashOf({ firewallExceptionProfiles: ['domain', 'public'] }));
  });

  it('does not depend on which set supplied a value', () => {
    const a = mergeSettings([defaultSet({ enabled: true })]);
    const b = mergeSettings([defaultSet(), custom('c', 1, { enabled: true })]);
    expect(a.provenance.enabled).not.toEqual(b.provenance.enabled);
    expect(a.versionHash).toBe(b.versionHash);
  });

  it('changes when any value changes', () => {
    const base = hashOf({});
    const changes: Partial<RemoteToolsSettings>[] = [
      { enabled: true },
      { accessLevel: 'view' },
      { permittedViewers: ['alice'] },
      { firewallExceptionProfiles: ['domain'] },
      { audibleSignal: 'repeatedly' },
      { tsUserAuthentication: true },
      { remoteAssistanceLevel: 'view' },
    ];
    const hashes = changes.map(hashOf);
    for (const hash of hashes) expect(hash).not.toBe(base);
    expect(new Set(hashes).size).toBe(hashes.length);
    expect(hashOf({ permittedViewers: ['alice'] })).not.toBe(hashOf({ permittedViewers: ['Alice'] }));
  });

  it('does not reorder the merged values themselves', () => {
    const result = mergeSettings([defaultSet({ permittedViewers: ['b', 'a'] })]);
    expect(result.values.permittedViewers).toEqual(['b', 'a']);
  });
});

describe('remoteToolsFullSchema', () => {
  const valid: RemoteToolsSettings = {
    ...CONFIGMGR_DEFAULT_REMOTE_TOOLS,
    firewallExceptionProfiles: ['domain', 'private'],
    permittedViewers: ['CONTOSO\\Helpdesk', 'alice'],
  };

  it('accepts complete settings', () => {
    expect(remoteToolsFullSchema.parse(valid)).toEqual(valid);
  });

  it('refuses a missing key', () => {
    const { enabled: _enabled, ...rest } = valid;
    expect(remoteToolsFullSchema.safeParse(rest).success).toBe(false);
  });

  it('refuses unknown keys', () => {
    const result = remoteToolsFullSchema.safeParse({ ...valid, wildcard: true });
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).toContain('wildcard');
  });

  it.each([
    ['enabled', 'yes'],
    ['accessLevel', 'admin'],
    ['audibleSignal', 'loud'],
    ['remoteAssistanceLevel', 'full_control'],
    ['permittedViewers', 'alice'],
    ['permittedViewers', [1]],
    ['permittedViewers', ['']],
    ['permittedViewers', ['   ']],
    ['permittedViewers', ['x'.repeat(257)]],
    ['permittedViewers', Array.from({ length: 501 }, (_, i) => `u${i}`)],
    ['firewallExceptionProfiles', ['work']],
    ['firewallExceptionProfiles', ['domain', 'domain']],
    ['firewallExceptionProfiles', 'domain'],
    ['manageTS', null],
  ])('refuses %s = %j', (key, value) => {
    expect(remoteToolsFullSchema.safeParse({ ...valid, [key]: value }).success).toBe(false);
  });

  it('accepts the limits', () => {
    expect(remoteToolsFullSchema.safeParse({ ...valid, permittedViewers: ['x'.repeat(256)] }).success).toBe(true);
    expect(remoteToolsFullSchema.safeParse({ ...valid, permittedViewers: Array.from({ length: 500 }, (_, i) => `u${i}`) }).success).toBe(
      true,
    );
    expect(remoteToolsFullSchema.safeParse({ ...valid, firewallExceptionProfiles: ['domain', 'private', 'public'] }).success).toBe(true);
  });
});

describe('remoteToolsPartialSchema', () => {
  it('accepts any subset, including none', () => {
    expect(remoteToolsPartialSchema.parse({})).toEqual({});
    expect(remoteToolsPartialSchema.parse({ enabled: true, permittedViewers: ['a'] })).toEqual({
      enabled: true,
      permittedViewers: ['a'],
    });
  });

  it('refuses unknown keys', () => {
    expect(remoteToolsPartialSchema.safeParse({ enabled: true, Enabled: true }).success).toBe(false);
  });

  it('refuses wrong types', () => {
    expect(remoteToolsPartialSchema.safeParse({ enabled: 'true' }).success).toBe(false);
    expect(remoteToolsPartialSchema.safeParse({ accessLevel: 'everything' }).success).toBe(false);
    expect(remoteToolsPartialSchema.safeParse({ firewallExceptionProfiles: ['public', 'public'] }).success).toBe(false);
    expect(remoteToolsPartialSchema.safeParse({ permittedViewers: [''] }).success).toBe(false);
  });

  it('refuses non-objects', () => {
    expect(remoteToolsPartialSchema.safeParse(null).success).toBe(false);
    expect(remoteToolsPartialSchema.safeParse([]).success).toBe(false);
  });
});
