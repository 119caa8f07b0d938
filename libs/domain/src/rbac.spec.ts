import { hasPermission, PERMISSIONS, ROLE_PERMISSIONS, roleHasPermission, scopeOf } from './rbac';
import { ROLE_NAMES, type Permission, type RoleGrant } from './types';

describe('ROLE_PERMISSIONS', () => {
  it('lists every permission exactly once', () => {
    expect([...PERMISSIONS].sort()).toEqual(
      [
        'admin.read',
        'admin.write',
        'audit.read',
        'session.cancel',
        'session.control',
        'session.read',
        'session.request',
        'session.request_on_behalf',
      ].sort(),
    );
  });

  it('maps every role to exactly the expected permissions', () => {
    const expected: Record<string, Permission[]> = {
      full_administrator: [...PERMISSIONS],
      remote_tools_operator: ['session.request', 'session.control', 'session.read', 'session.cancel'],
      read_only_auditor: ['session.read', 'audit.read', 'admin.read'],
      ticket_integration: ['session.request', 'session.request_on_behalf', 'session.read', 'session.cancel'],
    };
    expect(Object.keys(ROLE_PERMISSIONS).sort()).toEqual([...ROLE_NAMES].sort());
    for (const role of ROLE_NAMES) {
      expect([...ROLE_PERMISSIONS[role]].sort()).toEqual([...expected[role]].sort());
      for (const permission of PERMISSIONS) {
        expect(roleHasPermission(role, permission)).toBe(expected[role].includes(permission));
      }
    }
  });

  it('is frozen', () => {
    expect(Object.isFrozen(ROLE_PERMISSIONS)).toBe(true);
    expect(Object.isFrozen(ROLE_PERMISSIONS.remote_tools_operator)).toBe(true);
  });

  it('grants nothing for an unknown role name', () => {
    expect(roleHasPermission('nobody' as never, 'session.read')).toBe(false);
    expect(roleHasPermission('constructor' as never, 'session.read')).toBe(false);
    expect(hasPermission([{ role: 'nobody' as never, collectionIds: null }], 'session.read')).toBe(false);
  });
});

describe('hasPermission', () => {
  const operatorOn = (...ids: string[]): RoleGrant => ({ role: 'remote_tools_operator', collectionIds: ids });

  it('is false without grants', () => {
    expect(hasPermission([], 'session.request')).toBe(false);
    expect(hasPermission([], 'session.request', ['c1'])).toBe(false);
  });

  it('treats a null scope as every collection, including none', () => {
    const grants: RoleGrant[] = [{ role: 'remote_tools_operator', collectionIds: null }];
    expect(hasPermission(grants, 'session.control')).toBe(true);
    expect(hasPermission(grants, 'session.control', ['anything'])).toBe(true);
    expect(hasPermission(grants, 'session.control', [])).toBe(true);
  });

  it('needs an overlap between the grant scope and the collections asked', () => {
    const grants = [operatorOn('c1', 'c2')];
    expect(hasPermission(grants, 'session.request', ['c2', 'c9'])).toBe(true);
    expect(hasPermission(grants, 'session.request', ['c3'])).toBe(false);
    expect(hasPermission(grants, 'session.request', [])).toBe(false);
  });

  it('answers "anywhere" when collectionIds is undefined, an empty scope covering nothing', () => {
    expect(hasPermission([operatorOn('c1')], 'session.request')).toBe(true);
    expect(hasPermission([operatorOn()], 'session.request')).toBe(false);
  });

  it('ignores grants whose role lacks the permission, even in scope', () => {
    const grants: RoleGrant[] = [{ role: 'read_only_auditor', collectionIds: null }, operatorOn('c1')];
    expect(hasPermission(grants, 'session.request_on_behalf', ['c1'])).toBe(false);
    expect(hasPermission(grants, 'audit.read', ['c1'])).toBe(true);
    expect(hasPermission(grants, 'session.control', ['c2'])).toBe(false);
  });

  it('combines several grants', () => {
    const grants: RoleGrant[] = [operatorOn('c1'), { role: 'ticket_integration', collectionIds: ['c2'] }];
    expect(hasPermission(grants, 'session.request_on_behalf', ['c2'])).toBe(true);
    expect(hasPermission(grants, 'session.request_on_behalf', ['c1'])).toBe(false);
    expect(hasPermission(grants, 'session.request', ['c1'])).toBe(true);
  });
});

describe('scopeOf', () => {
  it('is [] when no grant holds the permission', () => {
    expect(scopeOf([], 'session.read')).toEqual([]);
    expect(scopeOf([{ role: 'read_only_auditor', collectionIds: null }], 'session.control')).toEqual([]);
  });

  it('is null when a grant holding the permission is unrestricted', () => {
    expect(
      scopeOf(
        [
          { role: 'remote_tools_operator', collectionIds: ['c1'] },
          { role: 'full_administrator', collectionIds: null },
        ],
        'session.read',
      ),
    ).toBeNull();
  });

  it('is the deduplicated union of the scopes holding the permission', () => {
    expect(
      scopeOf(
        [
          { role: 'remote_tools_operator', collectionIds: ['c1', 'c2'] },
          { role: 'read_only_auditor', collectionIds: ['c2', 'c3'] },
          { role: 'read_only_auditor', collectionIds: null }, // lacks session.control: ignored
          { role: 'ticket_integration', collectionIds: ['c4'] },
        ],
        'session.control',
      ),
    ).toEqual(['c1', 'c2']);
    expect(
      scopeOf(
        [
          { role: 'remote_tools_operator', collectionIds: ['c1', 'c2'] },
          { role: 'read_only_auditor', collectionIds: ['c2', 'c3'] },
        ],
        'session.read',
      ),
    ).toEqual(['c1', 'c2', 'c3']);
  });
});
