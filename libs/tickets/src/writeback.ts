import { TICKET_NOTE_STATES, type TicketNoteState } from '@rcflow/domain';
import type { TicketKind } from './kinds';
import { RCFLOW_SIGNATURE_HEADER, RCFLOW_TIMESTAMP_HEADER, rcflowSignature } from './signatures';

/** The session states worth telling a ticket about. */
export const WRITEBACK_OUTCOMES = TICKET_NOTE_STATES;
export type WritebackOutcome = TicketNoteState;

/** What a note says. */
export interface SessionOutcome {
  outcome: WritebackOutcome;
  sessionId: string;
  /** The ticket's reference as the rule read it (Jira key, ServiceNow number, "owner/repo#12"…). */
  ticketRef: string;
  /** The id the vendor's API takes when it differs from the reference (ServiceNow sys_id); else the reference. */
  ticketApiId: string;
  type: string;
  deviceHostname: string;
  viewerName: string;
  /** Failed eligibility checks (rejected), or the cause (failed). */
  reasons: string[];
  durationSeconds: number | null;
  at: string;
}

/** One HTTP request to the vendor. `credentials` are the integration's opened outbound credentials. */
export interface OutboundRequest {
  method: 'POST' | 'PUT' | 'PATCH';
  url: string;
  headers: Record<string, string>;
  body: string;
}

const HEADLINE: Record<WritebackOutcome, string> = {
  active: 'is active',
  rejected: 'was refused by rcflow',
  denied: 'was declined by the user at the device',
  consent_timeout: 'was not answered by the user at the device in time',
  failed: 'failed',
  ended: 'has ended',
};

function duration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.round(seconds % 60);
  return [h ? `${h} h` : '', m ? `${m} min` : '', `${s} s`].filter(Boolean).join(' ');
}

/** The note's text: one line saying what happened, then the details a helpdesk agent needs. */
export function noteText(o: SessionOutcome): string {
  const lines = [`rcflow: the ${o.type} session to ${o.deviceHostname} for ${o.viewerName} ${HEADLINE[o.outcome]}.`];
  if (o.reasons.length) lines.push(...o.reasons.map((r) => `- ${r}`));
  if (o.outcome === 'ended' && o.durationSeconds !== null) lines.push(`Duration: ${duration(o.durationSeconds)}.`);
  lines.push(`Session ${o.sessionId}, ${o.at}.`);
  return lines.join('\n');
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const trimSlash = (url: string) => url.replace(/\/+$/, '');
/** Every request says who it is (GitHub refuses one without a User-Agent). */
const json = { 'content-type': 'application/json', accept: 'application/json', 'user-agent': 'rcflow-writeback' };

const escapeHtml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function need(credentials: Readonly<Record<string, string>>, ...fields: string[]): string[] {
  const missing = fields.filter((f) => !credentials[f]);
  if (missing.length) throw new Error(`outbound credentials lack ${missing.join(', ')}`);
  return fields.map((f) => credentials[f] ?? '');
}

/**
 * The request that writes a private note to the ticket, as each vendor documents it: Jira Cloud
 * REST v3 comment in Atlassian Document Format (internal for Service Management), ServiceNow Table
 * API work note, Zendesk private comment, Freshservice/Freshdesk private note, GitHub issue
 * comment; `generic`: a POST of the outcome to the configured URL, signed with rcflow's scheme.
 * Throws when the credentials lack a field the vendor needs (the write-back is dead-lettered).
 */
export function writebackRequest(
  kind: TicketKind,
  baseUrl: string,
  credentials: Readonly<Record<string, string>>,
  o: SessionOutcome,
  nowMs: number,
): OutboundRequest {
  const base = trimSlash(baseUrl);
  const note = noteText(o);
  const id = encodeURIComponent(o.ticketApiId);
  switch (kind) {
    case 'jira': {
      const [email, apiToken] = need(credentials, 'email', 'apiToken');
      // ADF has no empty text node: a blank line is an empty paragraph.
      const paragraphs = note
        .split('\n')
        .map((text) => (text ? { type: 'paragraph', content: [{ type: 'text', text }] } : { type: 'paragraph' }));
      return {
        method: 'POST',
        url: `${base}/rest/api/3/issue/${id}/comment`,
        headers: { ...json, authorization: basic(email ?? '', apiToken ?? '') },
        body: JSON.stringify({
          body: { type: 'doc', version: 1, content: paragraphs },
          properties: [{ key: 'sd.public.comment', value: { internal: true } }],
        }),
      };
    }
    case 'servicenow': {
      const [user, password] = need(credentials, 'user', 'password');
      return {
        method: 'PATCH',
        url: `${base}/api/now/table/incident/${id}`,
        headers: { ...json, authorization: basic(user ?? '', password ?? '') },
        body: JSON.stringify({ work_notes: note }),
      };
    }
    case 'zendesk': {
      const [email, apiToken] = need(credentials, 'email', 'apiToken');
      return {
        method: 'PUT',
        url: `${base}/api/v2/tickets/${id}.json`,
        headers: { ...json, authorization: basic(`${email}/token`, apiToken ?? '') },
        body: JSON.stringify({ ticket: { comment: { body: note, public: false } } }),
      };
    }
    case 'freshservice':
    case 'freshdesk': {
      const [apiKey] = need(credentials, 'apiKey');
      return {
        method: 'POST',
        url: `${base}/api/v2/tickets/${id}/notes`,
        headers: { ...json, authorization: basic(apiKey ?? '', 'X') },
        body: JSON.stringify({ body: escapeHtml(note).replace(/\n/g, '<br>'), private: true }),
      };
    }
    case 'github': {
      const [token] = need(credentials, 'token');
      const m = /^([\w.-]+)\/([\w.-]+)#(\d+)$/.exec(o.ticketApiId);
      if (!m) throw new Error(`"${o.ticketApiId}" is not owner/repo#number`);
      return {
        method: 'POST',
        url: `${base}/repos/${m[1]}/${m[2]}/issues/${m[3]}/comments`,
        headers: {
          ...json,
          accept: 'application/vnd.github+json',
          authorization: `Bearer ${token}`,
          'x-github-api-version': '2022-11-28',
        },
        body: JSON.stringify({ body: note }),
      };
    }
    case 'generic': {
      const [secret] = need(credentials, 'signingSecret');
      const body = JSON.stringify({ ticket: o.ticketRef, sessionId: o.sessionId, outcome: o.outcome, note, at: o.at });
      const ts = String(Math.floor(nowMs / 1000));
      return {
        method: 'POST',
        url: base,
        headers: {
          ...json,
          [RCFLOW_TIMESTAMP_HEADER]: ts,
          [RCFLOW_SIGNATURE_HEADER]: rcflowSignature(secret ?? '', ts, Buffer.from(body)),
        },
        body,
      };
    }
  }
}

/** What to do after a vendor's answer: done, retry after a delay, or give up (dead letter). */
export type WritebackVerdict = { done: true } | { done: false; retryInMs: number } | { done: false; deadReason: string };

const MAX_RETRY_AFTER_MS = 3_600_000;

/** Retry-After in seconds or as an HTTP date, as milliseconds from now; null when absent or unreadable. */
export function retryAfterMs(value: string | null | undefined, nowMs: number): number | null {
  if (!value) return null;
  const v = value.trim();
  if (/^\d{1,7}$/.test(v)) return Math.min(Number(v) * 1000, MAX_RETRY_AFTER_MS);
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.min(Math.max(0, at - nowMs), MAX_RETRY_AFTER_MS) : null;
}

/**
 * 2xx: done. 429 and 503 honour Retry-After; 408, 5xx and network errors (status 0) back off
 * exponentially (base × 2^(attempt-1), ±20 % jitter from `random`); any other 4xx will not get
 * better by retrying (wrong credentials, unknown ticket) and is dead at once.
 */
export function writebackVerdict(
  status: number,
  retryAfter: string | null | undefined,
  attempt: number,
  backoffBaseMs: number,
  nowMs: number,
  random: () => number = Math.random,
): WritebackVerdict {
  if (status >= 200 && status < 300) return { done: true };
  if (status >= 400 && status < 500 && status !== 408 && status !== 429)
    return { done: false, deadReason: `the ticket system answered ${status}; retrying will not help` };
  const told = status === 429 || status === 503 ? retryAfterMs(retryAfter, nowMs) : null;
  if (told !== null) return { done: false, retryInMs: told };
  const exp = Math.min(backoffBaseMs * 2 ** Math.max(0, attempt - 1), MAX_RETRY_AFTER_MS);
  return { done: false, retryInMs: Math.round(exp * (0.8 + 0.4 * random())) };
}
