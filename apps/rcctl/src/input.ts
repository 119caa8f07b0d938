import { InvalidArgumentError } from 'commander';
import { ACCESS_MODES, SESSION_STATES, SESSION_TYPES, type AccessMode, type SessionState, type SessionType } from '@rcflow/domain';

/** Parsers of command-line values: each returns the value the API takes or throws commander's InvalidArgumentError. */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A device's short host name, as the API stores it. */
const HOSTNAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
// eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
const CONTROL = /[\u0000-\u001f\u007f]/;
const API_KEY = /^rcf_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[A-Za-z0-9_-]{43}$/;
const ACTION = /^[a-z_.]{1,64}$/;

export const isUuid = (s: string): boolean => UUID.test(s);

export function parseUuid(value: string): string {
  if (!isUuid(value)) throw new InvalidArgumentError(`"${value}" is not a UUID.`);
  return value.toLowerCase();
}

/** A device: its id, or its host name (resolved through the API). */
export type DeviceRef = { id: string } | { hostname: string };

export function parseDeviceRef(value: string): DeviceRef {
  if (isUuid(value)) return { id: value.toLowerCase() };
  if (HOSTNAME.test(value)) return { hostname: value };
  throw new InvalidArgumentError(`"${value}" is neither a device id (UUID) nor a host name (1-63 letters, digits, - or _).`);
}

/** A principal: its id, or its name (resolved through the API). */
export type PrincipalRef = { id: string } | { name: string };

export function parsePrincipalRef(value: string): PrincipalRef {
  if (isUuid(value)) return { id: value.toLowerCase() };
  if (value.trim() !== '' && value.length <= 256 && !CONTROL.test(value)) return { name: value.trim() };
  throw new InvalidArgumentError(`"${value}" is neither a principal id (UUID) nor a principal name.`);
}

/** remote_control, remote-control and remote control all name the API's `remote-control`. */
export function parseSessionType(value: string): SessionType {
  const normal = value.trim().toLowerCase().replace(/[_ ]/g, '-');
  const found = SESSION_TYPES.find((t) => t === normal);
  if (!found) throw new InvalidArgumentError(`"${value}" is not a session type: ${SESSION_TYPES.join(', ')}.`);
  return found;
}

export function parseAccess(value: string): AccessMode {
  const found = ACCESS_MODES.find((a) => a === value.trim().toLowerCase());
  if (!found) throw new InvalidArgumentError(`"${value}" is not an access mode: ${ACCESS_MODES.join(', ')}.`);
  return found;
}

export function parseState(value: string): SessionState {
  const found = SESSION_STATES.find((s) => s === value.trim().toLowerCase());
  if (!found) throw new InvalidArgumentError(`"${value}" is not a session state: ${SESSION_STATES.join(', ')}.`);
  return found;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** The longest wait rcctl accepts: a day. */
export const MAX_DURATION_MS = 86_400_000;

/** `90`, `90s`, `2m`, `1h30m`, `500ms`: a positive duration up to a day, in milliseconds (a bare number is seconds). */
export function parseDuration(value: string): number {
  const s = value.trim().toLowerCase();
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(s)) ms = Number(s) * 1000;
  else if (/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(s)) {
    ms = 0;
    for (const [, n, unit] of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) ms += Number(n) * UNIT_MS[unit!]!;
  } else throw new InvalidArgumentError(`"${value}" is not a duration (e.g. 90s, 2m, 1h).`);
  if (!(ms > 0) || ms > MAX_DURATION_MS) throw new InvalidArgumentError(`"${value}" must be more than 0 and at most 24h.`);
  return Math.round(ms);
}

/** A list size the API accepts (1-500). */
export function parseLimit(value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`"${value}" is not a whole number.`);
  const n = Number(value);
  if (n < 1 || n > 500) throw new InvalidArgumentError(`"${value}" must be from 1 to 500.`);
  return n;
}

/** An ISO 8601 date-time with an offset, or a duration ago (`15m` = fifteen minutes ago), as an ISO string. */
export function parseSince(now: () => number) {
  return (value: string): string => {
    const v = value.trim();
    if (/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/i.test(v) && Number.isFinite(Date.parse(v))) {
      return new Date(v).toISOString();
    }
    try {
      return new Date(now() - parseDuration(v)).toISOString();
    } catch {
      throw new InvalidArgumentError(`"${value}" is neither a date-time with offset (2026-11-29T21:00:00Z) nor a duration ago (15m).`);
    }
  };
}

/** An audit action name (`session.active`). */
export function parseAction(value: string): string {
  if (!ACTION.test(value)) throw new InvalidArgumentError(`"${value}" is not an action name (e.g. session.active).`);
  return value;
}

/** Comma-separated action names or prefixes (`session.active,session.ended` or `session.`). */
export function parseTypes(value: string): string {
  const items = value
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  if (items.length === 0) throw new InvalidArgumentError('--types needs at least one action name or prefix.');
  for (const t of items) if (!ACTION.test(t)) throw new InvalidArgumentError(`"${t}" is not an action name or prefix (e.g. session.).`);
  return items.join(',');
}

/** Free text of at most `max` characters, without control characters other than tab/newline. */
export function parseText(what: string, max: number) {
  return (value: string): string => {
    const v = value.trim();
    if (v === '') throw new InvalidArgumentError(`${what} must not be empty.`);
    if (v.length > max) throw new InvalidArgumentError(`${what} must be at most ${max} characters.`);
    if (v.includes('\u0000')) throw new InvalidArgumentError(`${what} must not contain NUL characters.`);
    return v;
  };
}

/** The base URL of the API: http(s) with a host, without a trailing slash. */
export function parseUrl(value: string): string {
  let u: URL;
  try {
    u = new URL(value.trim());
  } catch {
    throw new InvalidArgumentError(`"${value}" is not a URL (e.g. http://localhost:3000).`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new InvalidArgumentError(`"${value}" must be an http:// or https:// URL.`);
  if (u.search || u.hash) throw new InvalidArgumentError(`"${value}" must not carry a query or fragment.`);
  return `${u.origin}${u.pathname}`.replace(/\/+$/, '');
}

/** Whether `value` looks like an rcflow API key (rcf_<id>.<secret>); the key itself is never echoed. */
export function isApiKey(value: string): boolean {
  return API_KEY.test(value);
}

export function parseApiKey(value: string): string {
  const v = value.trim();
  if (!isApiKey(v)) throw new InvalidArgumentError('the API key is malformed (expected rcf_<id>.<secret>).');
  return v;
}
