import fc from 'fast-check';
import {
  CONFIGMGR_DEFAULT_REMOTE_TOOLS,
  REMOTE_TOOLS_SETTING_KEYS,
  mergeSettings,
  remoteToolsFullSchema,
  remoteToolsPartialSchema,
  settingsVersionHash,
} from './settings';
import {
  ACCESS_LEVELS,
  AUDIBLE_SIGNALS,
  FIREWALL_PROFILES,
  RA_LEVELS,
  type RemoteToolsSettingKey,
  type RemoteToolsSettings,
  type SettingsSet,
} from './types';

/** Property-based checks of the settings merge: lowest order wins per key, whatever the input order. */

const VALUE: Partial<Record<RemoteToolsSettingKey, fc.Arbitrary<unknown>>> = {
  accessLevel: fc.constantFrom(...ACCESS_LEVELS),
  audibleSignal: fc.constantFrom(...AUDIBLE_SIGNALS),
  remoteAssistanceLevel: fc.constantFrom(...RA_LEVELS),
  firewallExceptionProfiles: fc.shuffledSubarray([...FIREWALL_PROFILES]),
  permittedViewers: fc.uniqueArray(fc.stringMatching(/^[A-Za-z][A-Za-z0-9\\ ]{0,12}$/), { maxLength: 4 }),
};
// Every other setting is a yes/no; the full-schema check below catches a new key of another kind.
const valueOf = (key: RemoteToolsSettingKey) => VALUE[key] ?? fc.boolean();

const fullValues = fc.record(
  Object.fromEntries(REMOTE_TOOLS_SETTING_KEYS.map((k) => [k, valueOf(k)])),
) as fc.Arbitrary<RemoteToolsSettings>;
const partialValues = fc.record(Object.fromEntries(REMOTE_TOOLS_SETTING_KEYS.map((k) => [k, valueOf(k)])), {
  requiredKeys: [],
}) as fc.Arbitrary<Partial<RemoteToolsSettings>>;

/** A default set and up to six custom sets with distinct ids and possibly equal order numbers. */
const sets = fc
  .tuple(
    fullValues,
    fc.uniqueArray(
      fc.record({ id: fc.stringMatching(/^[a-z0-9]{1,6}$/), order: fc.integer({ min: 1, max: 5 }), remoteTools: partialValues }),
      {
        maxLength: 6,
        selector: (s) => s.id,
      },
    ),
  )
  .map(([defaults, customs]): SettingsSet[] => [
    { id: 'default', name: 'Default', order: 10000, isDefault: true, remoteTools: defaults },
    ...customs.filter((c) => c.id !== 'default').map((c) => ({ ...c, name: `set ${c.id}`, isDefault: false })),
  ]);

/** The reference rule, written plainly: for each key, the custom sets defining it by (order, id), else the default. */
function expectedValue(all: SettingsSet[], key: RemoteToolsSettingKey): { value: unknown; setId: string } {
  const customs = all
    .filter((s) => !s.isDefault && s.remoteTools[key] !== undefined)
    .sort((a, b) => a.order - b.order || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const winner = customs[0] ?? all.find((s) => s.isDefault)!;
  return { value: winner.remoteTools[key], setId: winner.id };
}

describe('mergeSettings (properties)', () => {
  it('generates only valid settings (the arbitraries cover every key and value the schemas allow)', () => {
    fc.assert(
      fc.property(fullValues, partialValues, (full, partial) => {
        expect(remoteToolsFullSchema.safeParse(full).success).toBe(true);
        expect(remoteToolsPartialSchema.safeParse(partial).success).toBe(true);
      }),
    );
    expect(remoteToolsFullSchema.safeParse(CONFIGMGR_DEFAULT_REMOTE_TOOLS).success).toBe(true);
  });

  it('takes each key from the lowest order number that configures it (ties by id), else from the default', () => {
    fc.assert(
      fc.property(sets, (all) => {
        const merged = mergeSettings(all);
        expect(remoteToolsFullSchema.safeParse(merged.values).success).toBe(true);
        for (const key of REMOTE_TOOLS_SETTING_KEYS) {
          const { value, setId } = expectedValue(all, key);
          expect(merged.values[key]).toEqual(value);
          expect(merged.provenance[key].setId).toBe(setId);
        }
      }),
    );
  });

  it('does not depend on the order the sets are given in, and does not change its input', () => {
    fc.assert(
      fc.property(
        sets.chain((all) => fc.tuple(fc.constant(all), fc.shuffledSubarray(all, { minLength: all.length }))),
        ([all, shuffled]) => {
          const before = JSON.stringify(all);
          expect(mergeSettings(shuffled)).toEqual(mergeSettings(all));
          expect(JSON.stringify(all)).toBe(before);
        },
      ),
    );
  });

  it('is unaffected by a set that comes after every set configuring its keys', () => {
    fc.assert(
      fc.property(sets, partialValues, (all, late) => {
        const merged = mergeSettings(all);
        const withLate = mergeSettings([...all, { id: 'zz-late', name: 'late', order: 9999, isDefault: false, remoteTools: late }]);
        for (const key of REMOTE_TOOLS_SETTING_KEYS) {
          const configuredByCustom = all.some((s) => !s.isDefault && s.remoteTools[key] !== undefined);
          if (configuredByCustom || late[key] === undefined) expect(withLate.values[key]).toEqual(merged.values[key]);
          else expect(withLate.values[key]).toEqual(late[key]);
        }
      }),
    );
  });

  it('hashes the values, not the order of list settings: equal values, equal version; a changed value, another one', () => {
    fc.assert(
      fc.property(fullValues, fc.boolean(), (values, flip) => {
        const reordered = {
          ...values,
          permittedViewers: [...values.permittedViewers].reverse(),
          firewallExceptionProfiles: [...values.firewallExceptionProfiles].reverse(),
        };
        expect(settingsVersionHash(reordered)).toBe(settingsVersionHash(values));
        const changed = {
          ...values,
          enabled: flip ? !values.enabled : values.enabled,
          manageTS: flip ? values.manageTS : !values.manageTS,
        };
        expect(settingsVersionHash(changed)).not.toBe(settingsVersionHash(values));
      }),
    );
  });
});
