import { fixture, fixtureBytes } from './testing/fixtures';
import { deliveryKey } from './delivery';

describe('deliveryKey: what makes a redelivery recognisable', () => {
  it('Jira and GitHub: their delivery headers', () => {
    const gh = fixture<Record<string, string>>('github_issues_opened.headers.json');
    const raw = fixtureBytes('github_issues_opened.json');
    expect(deliveryKey('github', raw, { 'x-github-delivery': gh['X-GitHub-Delivery'] }, {})).toEqual({
      source: 'header',
      key: '72d3162e-cc78-11e3-81ab-4c9367dc0958',
    });
    expect(deliveryKey('jira', raw, { 'x-atlassian-webhook-identifier': '4711' }, {})).toEqual({ source: 'header', key: '4711' });
  });
  it('Zendesk: the event id of event webhooks', () => {
    const body = fixture('zendesk_event_ticket_created.thirdparty_prismatic.body.json');
    expect(deliveryKey('zendesk', Buffer.from(JSON.stringify(body)), {}, body)).toEqual({ source: 'event-id', key: '01HNXXXX-CTEXAMPLE' });
  });
  it('otherwise a hash of the raw bytes: equal bodies share it, a changed byte does not', () => {
    const raw = fixtureBytes('servicenow_table_api_incident_get_by_sysid.json');
    const a = deliveryKey('servicenow', raw, {}, null);
    expect(a.source).toBe('body-hash');
    expect(deliveryKey('servicenow', Buffer.from(raw), {}, null)).toEqual(a);
    expect(deliveryKey('servicenow', Buffer.concat([raw, Buffer.from(' ')]), {}, null)).not.toEqual(a);
    expect(deliveryKey('generic', raw, { 'x-rcflow-delivery': 'd-1' }, null)).toEqual({ source: 'header', key: 'd-1' });
  });
  it('ignores a header that is empty, too long or not printable, and a Zendesk id that is not text', () => {
    const raw = Buffer.from('{}');
    for (const bad of ['', ' ', 'x'.repeat(201), 'a\u0000b', 'a b'])
      expect(deliveryKey('github', raw, { 'x-github-delivery': bad }, {}).source).toBe('body-hash');
    expect(deliveryKey('zendesk', raw, {}, { id: { nested: 1 } }).source).toBe('body-hash');
  });
});
