/**
 * What each ticket system accepts as a private note, written from the vendors' REST docs (not from
 * rcflow's writeback.ts, so that the two check each other): route, authentication, headers, body
 * and the answer. `readNoteRequest` turns a request into the note's text or a `Refused` with the
 * status the vendor would answer and a sentence saying what was wrong.
 *
 * Stricter than the vendors on purpose in two ways: a note must be private where the vendor has
 * private notes, and a ServiceNow/Zendesk update may carry only the note (no other field changes).
 */
import { createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { TicketKind } from '@rcflow/tickets';

/** What a README reader pastes into the integration's outbound credentials. */
export const DEFAULT_CREDENTIALS: Record<TicketKind, Record<string, string>> = {
  jira: { email: 'agent@example.com', apiToken: 'fake-token' },
  servicenow: { user: 'rcflow.integration', password: 'fake-password' },
  zendesk: { email: 'agent@example.com', apiToken: 'fake-token' },
  freshservice: { apiKey: 'fake-api-key' },
  freshdesk: { apiKey: 'fake-api-key' },
  github: { token: 'fake-token' },
  generic: { signingSecret: 'fake-signing-secret' },
};

/** A request the vendor would refuse: its status, why, and headers to send (Allow). */
export class Refused extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(reason);
  }
}

export interface NoteRequest {
  method: string;
  /** Without the query string. */
  path: string;
  headers: IncomingHttpHeaders;
  raw: Buffer;
}

export interface ReadNote {
  ticket: string;
  text: string;
  private: boolean;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';
const bad = (reason: string, status = 400) => new Refused(status, reason);
const header = (h: IncomingHttpHeaders, name: string) => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

/** Each vendor's note endpoint: method, path (groups → ticket), documented shape, success status. */
export const ROUTES: Record<TicketKind, { method: string; path: RegExp; shape: string; ok: number }> = {
  jira: {
    method: 'POST',
    path: /^\/rest\/api\/3\/issue\/([A-Z][A-Z0-9_]*-\d+|\d+)\/comment$/,
    shape: '/rest/api/3/issue/{issueIdOrKey}/comment',
    ok: 201,
  },
  servicenow: {
    method: 'PATCH',
    path: /^\/api\/now\/table\/incident\/([0-9a-f]{32})$/,
    shape: '/api/now/table/incident/{sys_id}',
    ok: 200,
  },
  zendesk: { method: 'PUT', path: /^\/api\/v2\/tickets\/(\d+)(?:\.json)?$/, shape: '/api/v2/tickets/{ticket_id}.json', ok: 200 },
  freshservice: { method: 'POST', path: /^\/api\/v2\/tickets\/(\d+)\/notes$/, shape: '/api/v2/tickets/{id}/notes', ok: 201 },
  freshdesk: { method: 'POST', path: /^\/api\/v2\/tickets\/(\d+)\/notes$/, shape: '/api/v2/tickets/{id}/notes', ok: 201 },
  github: {
    method: 'POST',
    path: /^\/repos\/([\w.-]+)\/([\w.-]+)\/issues\/(\d+)\/comments$/,
    shape: '/repos/{owner}/{repo}/issues/{issue_number}/comments',
    ok: 201,
  },
  generic: { method: 'POST', path: /^\/$/, shape: '/', ok: 200 },
};

function checkBasic(h: IncomingHttpHeaders, user: string, password: string, what: string): void {
  const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header(h, 'authorization') ?? '');
  if (!m?.[1]) throw bad(`authorization must be Basic ${what}`, 401);
  const decoded = Buffer.from(m[1], 'base64').toString();
  if (decoded !== `${user}:${password}`)
    throw bad(`Basic credentials for "${decoded.split(':')[0] ?? ''}" are not ${what} as configured`, 401);
}

/** rcflow's scheme: sha256=<hex or base64 HMAC-SHA256(secret, "<unix seconds>.<raw body>")>, ±5 minutes. */
function checkGenericSignature(h: IncomingHttpHeaders, raw: Buffer, secret: string, nowMs: number): void {
  const ts = header(h, 'x-rcflow-timestamp')?.trim() ?? '';
  if (!/^\d{1,12}$/.test(ts)) throw bad('x-rcflow-timestamp must be unix seconds', 401);
  if (Math.abs(nowMs - Number(ts) * 1000) > 5 * 60_000) throw bad('x-rcflow-timestamp is more than 5 minutes from the clock', 401);
  const m = /^sha256=(?:([0-9a-fA-F]{64})|([A-Za-z0-9+/]{43}=))$/.exec(header(h, 'x-rcflow-signature')?.trim() ?? '');
  if (!m) throw bad('x-rcflow-signature must be sha256=<hex or base64 HMAC-SHA256>', 401);
  const sent = m[1] ? Buffer.from(m[1], 'hex') : Buffer.from(m[2] ?? '', 'base64');
  if (!sent.equals(createHmac('sha256', secret).update(`${ts}.`).update(raw).digest()))
    throw bad('x-rcflow-signature is not HMAC-SHA256(signingSecret, "<timestamp>.<raw body>")', 401);
}

function checkAuth(kind: TicketKind, r: NoteRequest, c: Record<string, string>, nowMs: number): void {
  switch (kind) {
    case 'jira':
      return checkBasic(r.headers, c.email ?? '', c.apiToken ?? '', 'email:apiToken');
    case 'servicenow':
      return checkBasic(r.headers, c.user ?? '', c.password ?? '', 'user:password');
    case 'zendesk':
      return checkBasic(r.headers, `${c.email ?? ''}/token`, c.apiToken ?? '', '{email}/token:apiToken');
    case 'freshservice':
    case 'freshdesk':
      return checkBasic(r.headers, c.apiKey ?? '', 'X', 'apiKey:X');
    case 'github': {
      // GitHub takes "token <t>" as well as "Bearer <t>".
      const m = /^(?:Bearer|token) (\S+)$/.exec(header(r.headers, 'authorization') ?? '');
      if (!m) throw bad('authorization must be "Bearer <token>"', 401);
      if (m[1] !== c.token) throw bad('Bad credentials', 401);
      if (!header(r.headers, 'user-agent'))
        throw bad('Request forbidden by administrative rules: GitHub requires a User-Agent header', 403);
      if (!(header(r.headers, 'accept') ?? '').includes('application/vnd.github+json'))
        throw bad('accept must be application/vnd.github+json', 406);
      const version = header(r.headers, 'x-github-api-version');
      if (version !== undefined && version !== '2022-11-28') throw bad(`unsupported x-github-api-version ${version}`);
      return;
    }
    case 'generic':
      return checkGenericSignature(r.headers, r.raw, c.signingSecret ?? '', nowMs);
  }
}

// Atlassian Document Format: inline containers hold text and hard breaks, block containers hold blocks.
const ADF_INLINE_PARENTS = new Set(['paragraph', 'heading', 'codeBlock']);
const ADF_BLOCK_PARENTS = new Set(['bulletList', 'orderedList', 'listItem', 'blockquote', 'panel']);

function adfBlock(node: unknown): string {
  if (!isObject(node) || typeof node.type !== 'string') throw bad('an ADF node has no type');
  if (node.type === 'rule') return '';
  const inline = ADF_INLINE_PARENTS.has(node.type);
  if (!inline && !ADF_BLOCK_PARENTS.has(node.type)) throw bad(`ADF node "${node.type}" cannot stand at block level (INVALID_INPUT)`);
  if (node.content === undefined) return '';
  if (!Array.isArray(node.content)) throw bad(`ADF ${node.type}.content must be an array`);
  return inline ? node.content.map(adfInline).join('') : node.content.map(adfBlock).join('\n');
}

function adfInline(node: unknown): string {
  if (!isObject(node)) throw bad('an ADF inline node is not an object');
  if (node.type === 'hardBreak') return '\n';
  if (node.type !== 'text') throw bad(`ADF node "${String(node.type)}" is not inline content (INVALID_INPUT)`);
  // The ADF schema gives text a minimum length of 1: an empty line is an empty paragraph.
  if (typeof node.text !== 'string' || node.text === '') throw bad('an ADF text node has empty text (Jira answers INVALID_INPUT)');
  return node.text;
}

/** Freshworks bodies are HTML: lines back from <br> and block ends, tags dropped, entities decoded. */
export function htmlText(html: string): string {
  const entities: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', '#39': "'", nbsp: ' ' };
  return html
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<\/(p|div|li)>(?!$)/gi, '\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&(lt|gt|amp|quot|#39|nbsp);/g, (_, e: string) => entities[e] ?? '');
}

function onlyKeys(obj: Json, allowed: string[], where: string): void {
  const extra = Object.keys(obj).filter((k) => !allowed.includes(k));
  if (extra.length) throw bad(`${where} carries ${extra.join(', ')}: a write-back may only add the note`);
}

function readBody(kind: TicketKind, body: unknown): { text: string; private: boolean; ticket?: string } {
  if (!isObject(body)) throw bad('the body must be a JSON object', kind === 'github' ? 422 : 400);
  switch (kind) {
    case 'jira': {
      const doc = body.body;
      if (typeof doc === 'string') throw bad('REST v3 takes body as an Atlassian Document, not a string (that was v2)');
      if (!isObject(doc) || doc.type !== 'doc' || doc.version !== 1 || !Array.isArray(doc.content))
        throw bad('body must be an Atlassian Document {type:"doc", version:1, content:[…]}');
      const text = doc.content.map(adfBlock).join('\n');
      if (text.length > 32767) throw bad('the comment exceeds 32,767 characters');
      const props = body.properties ?? [];
      if (!Array.isArray(props) || !props.every((p) => isObject(p) && nonEmpty(p.key)))
        throw bad('properties must be an array of {key, value}');
      const internal = props.some((p) => isObject(p) && p.key === 'sd.public.comment' && isObject(p.value) && p.value.internal === true);
      return { text, private: internal };
    }
    case 'servicenow':
      onlyKeys(body, ['work_notes'], 'the incident update');
      if (!nonEmpty(body.work_notes)) throw bad('work_notes must be a non-empty string');
      return { text: body.work_notes, private: true };
    case 'zendesk': {
      const ticket = body.ticket;
      if (!isObject(ticket) || !isObject(ticket.comment)) throw bad('the body must be {ticket:{comment:{body, public:false}}}');
      onlyKeys(ticket, ['comment'], 'ticket');
      if (!nonEmpty(ticket.comment.body)) throw bad('ticket.comment.body must be a non-empty string');
      if (ticket.comment.public !== false) throw bad('ticket.comment.public must be false: an rcflow note is private');
      return { text: ticket.comment.body, private: true };
    }
    case 'freshservice':
    case 'freshdesk':
      if (!nonEmpty(body.body)) throw bad('Validation failed: body must be a non-empty string (HTML)');
      if (body.private !== true) throw bad('Validation failed: private must be true for an rcflow note');
      return { text: htmlText(body.body), private: true };
    case 'github':
      if (!nonEmpty(body.body)) throw bad('Invalid request: "body" wasn\'t supplied', 422);
      if (body.body.length > 65536) throw bad('body is too long (maximum is 65536 characters)', 422);
      return { text: body.body, private: false };
    case 'generic':
      if (!nonEmpty(body.note) || !nonEmpty(body.ticket)) throw bad('the body must carry "ticket" and "note" as strings');
      return { text: body.note, private: true, ticket: body.ticket };
  }
}

/** The note a request carries, or a `Refused`: route (404/405), auth (401/403/406), content type (415), body (400/422). */
export function readNoteRequest(kind: TicketKind, r: NoteRequest, credentials: Record<string, string>, nowMs: number): ReadNote {
  const route = ROUTES[kind];
  const m = route.path.exec(r.path);
  if (!m) throw bad(`no such resource: ${kind} takes notes at ${route.method} ${route.shape}`, 404);
  if (r.method !== route.method) throw new Refused(405, `${r.method} not allowed; ${kind} takes ${route.method}`, { allow: route.method });
  checkAuth(kind, r, credentials, nowMs);
  if (!/^application\/json\s*(;|$)/i.test(header(r.headers, 'content-type') ?? '')) throw bad('content-type must be application/json', 415);
  let body: unknown;
  try {
    body = JSON.parse(r.raw.toString('utf8'));
  } catch {
    throw bad('the body is not JSON');
  }
  const note = readBody(kind, body);
  const ticket = kind === 'github' ? `${m[1]}/${m[2]}#${m[3]}` : (note.ticket ?? m[1] ?? '');
  return { ticket, text: note.text, private: note.private };
}

/** A small answer in the shape the vendor sends back. */
export function vendorAnswer(kind: TicketKind, note: ReadNote, id: number, at: string): Json {
  const { ticket, text } = note;
  switch (kind) {
    case 'jira':
      return { id: String(id), self: `/rest/api/3/issue/${ticket}/comment/${id}`, created: at, updated: at };
    case 'servicenow':
      return { result: { sys_id: ticket, number: `INC${String(id).padStart(7, '0')}`, work_notes: '', sys_updated_on: at } };
    case 'zendesk':
      return { ticket: { id: Number(ticket), updated_at: at }, audit: { id, events: [{ type: 'Comment', body: text, public: false }] } };
    case 'freshservice':
      return { conversation: { id, ticket_id: Number(ticket), body_text: text, private: true, created_at: at } };
    case 'freshdesk':
      return { id, ticket_id: Number(ticket), body_text: text, private: true, incoming: false, created_at: at };
    case 'github':
      return { id, body: text, html_url: `https://github.com/${ticket.replace('#', '/issues/')}#issuecomment-${id}`, created_at: at };
    case 'generic':
      return { received: true };
  }
}
