import { createWebhookSchema, deliveriesQuery, updateWebhookSchema } from './webhooks.schemas';

const paths = (r: { success: boolean; error?: { issues: { path: PropertyKey[] }[] } }) =>
  r.success ? [] : r.error!.issues.map((i) => i.path.join('.') || 'body');

describe('webhook bodies', () => {
  const ok = { url: 'https://hooks.example.com/rcflow', eventTypes: ['session.*', 'webhook.tested'] };

  it('takes a URL, event types and the optional fields', () => {
    expect(createWebhookSchema.safeParse(ok).success).toBe(true);
    const full = { ...ok, collectionId: '00000000-0000-4000-8000-000000000001', enabled: false, description: '  board  ' };
    expect(createWebhookSchema.parse(full)).toEqual({ ...full, description: 'board' });
    expect(createWebhookSchema.safeParse({ ...ok, collectionId: null, description: null }).success).toBe(true);
  });

  it.each([
    [{ eventTypes: ['*'] }, 'url'],
    [{ ...ok, url: '' }, 'url'],
    [{ ...ok, url: 'x'.repeat(2001) }, 'url'],
    [{ ...ok, eventTypes: [] }, 'eventTypes'],
    [{ ...ok, eventTypes: 'session.*' }, 'eventTypes'],
    [{ ...ok, eventTypes: ['session.*', 'session.*'] }, 'eventTypes'],
    [{ ...ok, eventTypes: ['SESSION.ACTIVE'] }, 'eventTypes.0'],
    [{ ...ok, eventTypes: Array.from({ length: 51 }, (_, i) => `a.e${i}`) }, 'eventTypes'],
    [{ ...ok, collectionId: 'desks' }, 'collectionId'],
    [{ ...ok, enabled: 'true' }, 'enabled'],
    [{ ...ok, description: 'two\nlines' }, 'description'],
    [{ ...ok, secret: 'whsec_chosen' }, 'body'],
    [{ ...ok, description: 'nul \u0000' }, 'description'],
  ])('refuses %j at %s', (body, path) => {
    expect(paths(createWebhookSchema.safeParse(body))).toContain(path);
  });

  it('patches any field alone, and refuses unknown ones', () => {
    expect(updateWebhookSchema.safeParse({}).success).toBe(true);
    expect(updateWebhookSchema.safeParse({ enabled: false }).success).toBe(true);
    expect(paths(updateWebhookSchema.safeParse({ secret: 'x' }))).toEqual(['body']);
    expect(paths(updateWebhookSchema.safeParse({ eventTypes: [] }))).toEqual(['eventTypes']);
  });

  it('filters the delivery log by a known status only', () => {
    expect(deliveriesQuery.parse({ status: 'dead' })).toEqual({ status: 'dead', limit: 50 });
    expect(paths(deliveriesQuery.safeParse({ status: 'lost' }))).toEqual(['status']);
    expect(paths(deliveriesQuery.safeParse({ limit: '0' }))).toEqual(['limit']);
  });
});
