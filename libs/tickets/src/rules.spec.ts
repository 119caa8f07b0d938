import { fixture } from './testing/fixtures';
import { applyRule, defaultRules, firstMatchingRule, mappingRuleSchema, renderTemplate, type Delivery, type MappingRule } from './rules';
import { TICKET_KINDS } from './kinds';

type Json = Record<string, any>;
const clone = <T>(v: T): T => structuredClone(v);
const only = (kind: Parameters<typeof defaultRules>[0]): MappingRule => {
  const [rule] = defaultRules(kind);
  if (!rule) throw new Error(`no default rule for ${kind}`);
  return rule;
};
const delivery = (body: unknown, headers: Delivery['headers'] = {}): Delivery => ({ body, headers });

describe('the vendor defaults', () => {
  it.each(TICKET_KINDS)('%s: every default rule passes the schema an admin’s rule must pass', (kind) => {
    for (const rule of defaultRules(kind)) expect(mappingRuleSchema.parse(rule)).toEqual(rule);
  });
});

describe('Jira', () => {
  const rule = only('jira');
  const assigned = fixture<Json>('jira_issue_updated_assigned.json');

  it('does not trigger on the assignment fixture as published: it has no remote-help label', () => {
    expect(applyRule(rule, delivery(assigned))).toEqual({ matched: false, reason: expect.stringContaining('condition is not met') });
  });

  it('triggers once the label is there, reading key, device (from the summary) and assignee', () => {
    const body = clone(assigned);
    body.issue.fields.labels.push('remote-help');
    body.issue.fields.summary = 'Outlook crashes on device: WS-0042';
    expect(applyRule(rule, delivery(body))).toEqual({
      matched: true,
      ticketRef: 'TES-41',
      ticketApiId: 'TES-41',
      deviceNames: ['WS-0042'],
      matchBy: 'hostname',
      viewer: { identity: 'jira', externalId: assigned.issue.fields.assignee.accountId },
      type: 'remote-assistance',
      access: 'full',
      reason: 'Jira TES-41: Outlook crashes on device: WS-0042',
    });
  });

  it('does not trigger on an update that did not change the assignee (the custom-field fixture)', () => {
    const body = clone(fixture<Json>('jira_issue_updated_custom_field.json'));
    body.issue.fields.labels.push('remote-help');
    body.issue.fields.summary = 'host WS-1';
    expect(applyRule(rule, delivery(body)).matched).toBe(false);
  });

  it('triggers on a created issue with assignee and label; says why when no device is named', () => {
    const body = clone(fixture<Json>('jira_issue_created.json'));
    body.issue.fields.labels.push('remote-help');
    const outcome = applyRule(rule, delivery(body));
    expect(outcome).toEqual({ matched: false, reason: expect.stringContaining('no device name') });
    body.issue.fields.description = 'User says: computer=LAB-PC-7 is frozen';
    expect(applyRule(rule, delivery(body))).toMatchObject({ matched: true, ticketRef: 'KT-22', deviceNames: ['LAB-PC-7'] });
  });

  it('reads a custom field when the admin points the device at one', () => {
    const body = clone(assigned);
    body.issue.fields.labels.push('remote-help');
    body.issue.fields.customfield_10050 = { value: 'WS-0099' };
    const custom = { ...rule, device: { from: 'issue.fields.customfield_10050.value', matchBy: 'hostname' as const } };
    expect(applyRule(custom, delivery(body))).toMatchObject({ matched: true, deviceNames: ['WS-0099'] });
  });
});

describe('ServiceNow (a Table API incident record)', () => {
  const rule = only('servicenow');
  const [record] = fixture<{ result: Json[] }>('servicenow_table_api_incident_list_pdi.json').result;

  it('reads number, the configuration item’s sys_id (matched by host name or external id) and the assignee’s sys_id', () => {
    expect(applyRule(rule, delivery(record))).toMatchObject({
      matched: true,
      ticketRef: 'INC0000060',
      // The Table API writes the work note by sys_id, not by number.
      ticketApiId: record.sys_id,
      deviceNames: [record.cmdb_ci.value],
      matchBy: 'either',
      viewer: { identity: 'servicenow', externalId: record.assigned_to.value },
    });
  });
  it('prefers the display value (a host name) when the record was sent with display values', () => {
    const body = clone(record);
    body.cmdb_ci.display_value = 'SN-HOST-1';
    expect(applyRule(rule, delivery(body))).toMatchObject({ matched: true, deviceNames: ['SN-HOST-1'] });
  });
  it('does not trigger when the record lacks the sys_id the note is written to', () => {
    const body = clone(record);
    delete body.sys_id;
    expect(applyRule(rule, delivery(body))).toMatchObject({ matched: false, reason: expect.stringContaining('no ticket API id') });
  });
  it('does not trigger on the unassigned record of the Table API page', () => {
    const unassigned = fixture<{ result: Json }>('servicenow_table_api_incident_get_by_sysid.json').result;
    expect(applyRule(rule, delivery(unassigned)).matched).toBe(false);
  });
});

describe('Zendesk', () => {
  const rule = only('zendesk');
  const created = fixture<Json>('zendesk_event_ticket_created.thirdparty_prismatic.body.json');

  it('does not trigger on the ticket.created fixture (no tags, no assignee)', () => {
    expect(applyRule(rule, delivery(created)).matched).toBe(false);
  });
  it('triggers on remote_help with a device_ tag and an assignee', () => {
    const body = clone(created);
    body.detail.tags = ['vip', 'remote_help', 'device_ws-0042'];
    body.detail.assignee_id = '9001';
    body.detail.subject = 'Printer';
    expect(applyRule(rule, delivery(body))).toMatchObject({
      matched: true,
      ticketRef: '35436',
      deviceNames: ['ws-0042'],
      viewer: { identity: 'zendesk', externalId: '9001' },
      reason: 'Zendesk #35436: Printer',
    });
  });
});

describe('Freshservice and Freshdesk', () => {
  it('Freshservice: the asset name and the responder’s e-mail', () => {
    expect(applyRule(only('freshservice'), delivery(fixture('freshservice_app_event_onTicketCreate.json')))).toMatchObject({
      matched: true,
      ticketRef: '295',
      deviceNames: ['Laptop'],
      matchBy: 'either',
      viewer: { identity: 'email', externalId: 'andrea@freshservice.com' },
    });
  });
  it('Freshdesk: the published automation body names no agent, so it does not trigger; with the documented field it does', () => {
    const body = clone(fixture<Json>('freshdesk_webhook_ticket_created.json'));
    expect(applyRule(only('freshdesk'), delivery(body)).matched).toBe(false);
    body.freshdesk_webhook.ticket_agent_email = 'agent@example.com';
    body.freshdesk_webhook.ticket_subject = 'Slow PC, host: FD-7 ☃';
    expect(applyRule(only('freshdesk'), delivery(body))).toMatchObject({ matched: true, ticketRef: '11', deviceNames: ['FD-7'] });
  });
});

describe('GitHub', () => {
  const rule = only('github');
  const opened = fixture<Json>('github_issues_opened.json');
  const headers = { 'x-github-event': 'issues' };

  it('needs the event header, the label and an assignee', () => {
    expect(applyRule(rule, delivery(opened, headers)).matched).toBe(false);
    const body = clone(opened);
    body.issue.labels.push({ name: 'remote-help' });
    body.issue.body = 'my device: GH-1 will not boot';
    expect(applyRule(rule, delivery(body, headers))).toMatchObject({
      matched: true,
      ticketRef: 'Codertocat/Hello-World#1',
      deviceNames: ['GH-1'],
      viewer: { identity: 'github', externalId: 'Codertocat' },
    });
    expect(applyRule(rule, delivery(body, { 'x-github-event': 'issue_comment' })).matched).toBe(false);
  });
});

describe('what a payload cannot do', () => {
  const rules = TICKET_KINDS.flatMap((k) => defaultRules(k));
  const odd: unknown[] = [
    null,
    [],
    'text',
    42,
    {},
    { issue: 'x' },
    { issue: { fields: { labels: 'remote-help' } } },
    { detail: { tags: [1, null] } },
  ];

  it.each(odd.map((b) => [JSON.stringify(b), b]))('%s: every default rule answers unmatched with a reason, never throws', (_, body) => {
    for (const rule of rules) {
      const outcome = applyRule(rule, delivery(body));
      expect(outcome.matched).toBe(false);
      if (!outcome.matched) expect(outcome.reason).toMatch(/^rule "/);
    }
  });

  it('caps device names and drops values that are not text', () => {
    const rule: MappingRule = { ...only('generic'), device: { from: 'device', matchBy: 'hostname' } };
    const names = Array.from({ length: 50 }, (_, i) => `H-${i}`);
    const outcome = applyRule(rule, delivery({ ticket: 'T-1', device: [...names, { x: 1 }, null, 'H-0'] }));
    expect(outcome).toMatchObject({ matched: true });
    if (outcome.matched) expect(outcome.deviceNames).toEqual(names.slice(0, 20));
  });

  it('firstMatchingRule takes the first rule that triggers, else joins every reason', () => {
    const a: MappingRule = { ...only('generic'), name: 'a', when: "kind == 'a'" };
    const b: MappingRule = { ...only('generic'), name: 'b', when: "kind == 'b'" };
    expect(firstMatchingRule([a, b], delivery({ kind: 'b', ticket: 'T', device: 'D' }))).toMatchObject({ matched: true, rule: 'b' });
    expect(firstMatchingRule([a, b], delivery({ kind: 'c' }))).toEqual({
      matched: false,
      rule: null,
      reason: 'rule "a": its condition is not met; rule "b": its condition is not met',
    });
    expect(firstMatchingRule([], delivery({}))).toMatchObject({ matched: false, reason: 'the integration has no enabled rule' });
  });
});

describe('the rule schema an admin’s rule must pass', () => {
  const base = only('generic');
  it.each([
    ['a JMESPath syntax error', { ...base, when: 'a ==' }, 'when'],
    ['a regular expression that does not parse', { ...base, device: { ...base.device, pattern: '(' } }, 'device.pattern'],
    ['a pattern without a capturing group', { ...base, device: { ...base.device, pattern: 'WS-\\d+' } }, 'device.pattern'],
    ['a placeholder that is not JMESPath', { ...base, session: { ...base.session, reason: 'x {{ a == }}' } }, 'session.reason'],
    ['an unknown field', { ...base, extra: 1 }, ''],
    ['an unknown identity system', { ...base, viewer: { from: 'v', identity: 'ldap' } }, 'viewer.identity'],
  ])('refuses %s', (_, rule, path) => {
    const result = mappingRuleSchema.safeParse(rule);
    expect(result.success).toBe(false);
    if (!result.success) expect(result.error.issues.map((i) => i.path.join('.'))).toContain(path);
  });
});

describe('renderTemplate', () => {
  it('fills placeholders with text and numbers and leaves objects, nulls and errors empty', () => {
    const d = delivery({ key: 'K-1', n: 7, o: { a: 1 } });
    expect(renderTemplate('{{key}} #{{ n }} [{{o}}] [{{missing}}] [{{ length(n) }}]', d)).toBe('K-1 #7 [] [] []');
  });
});
