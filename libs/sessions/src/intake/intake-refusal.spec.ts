import { expect } from '@jest/globals';
import type { PrincipalFacts, RoleGrant } from '@rcflow/domain';
import { intakeRefusal } from './intake-statement';

const DEVICE = '00000000-0000-4000-8000-0000000000d1';
const VIEWER = '00000000-0000-4000-8000-0000000000a2';
const caller = (...grants: RoleGrant[]): PrincipalFacts => ({
  id: 'me',
  name: 'me',
  kind: 'user',
  disabled: false,
  groupNames: [],
  grants,
});
const refusal = (who: PrincipalFacts, collections: string[] | null, viewerId = who.id, viewerKind: string | null = null) => {
  const e = intakeRefusal(who, DEVICE, viewerId, { collections, viewerKind });
  return e && { status: e.status, message: e.message };
};

describe('intakeRefusal', () => {
  const operator = caller({ role: 'remote_tools_operator', collectionIds: ['desks'] });
  const bot = caller({ role: 'ticket_integration', collectionIds: ['desks'] });

  it('accepts a device in the caller scope, and any device for an unrestricted grant', () => {
    expect(refusal(operator, ['desks'])).toBeNull();
    expect(refusal(operator, ['servers', 'desks'])).toBeNull();
    expect(refusal(caller({ role: 'full_administrator', collectionIds: null }), [])).toBeNull();
  });

  it('answers unknown and out-of-scope devices with the same 404', () => {
    expect(refusal(operator, null)).toEqual({ status: 404, message: expect.stringMatching(/does not exist or is outside your scope/) });
    expect(refusal(operator, ['servers'])).toEqual(refusal(operator, null));
    expect(refusal(operator, [])).toEqual(refusal(operator, null));
  });

  it('refuses a caller without the right to request sessions with 403', () => {
    expect(refusal(caller({ role: 'read_only_auditor', collectionIds: null }), ['desks'])).toMatchObject({ status: 403 });
    expect(refusal(caller({ role: 'remote_tools_operator', collectionIds: [] }), ['desks'])).toMatchObject({ status: 403 });
  });

  it('checks a request on behalf of another viewer: the right over the device, then the viewer', () => {
    expect(refusal(operator, ['desks'], VIEWER, 'user')).toMatchObject({ status: 403, message: expect.stringMatching(/on behalf/) });
    expect(refusal(bot, ['desks'], VIEWER, null)).toMatchObject({ status: 422, message: expect.stringMatching(/not a known principal/) });
    expect(refusal(bot, ['desks'], VIEWER, 'group')).toMatchObject({ status: 422, message: expect.stringMatching(/not a group/) });
    expect(refusal(bot, ['desks'], VIEWER, 'user')).toBeNull();
    expect(refusal(bot, ['desks'], VIEWER, 'service')).toBeNull();
    expect(refusal(bot, ['servers'], VIEWER, 'user')).toMatchObject({ status: 404 });
  });
});
