import { createHash, hash } from 'node:crypto';
import type { Client } from 'pg';
import { escapeLiteral } from 'pg';
import { canonicalJson } from '@rcflow/domain';
import { copyOut } from './copy-out';
import { CopyRow, HAS_ESCAPE, JsonWriter, NON_ASCII, NULL } from './copy-text';
import { ChainWalk, StreamHead } from './audit-chain-walk';

/**
 * occurred_at as JavaScript's toISOString() writes it, computed by PostgreSQL: for years 1 to
 * 9999 the two agree (both truncate to milliseconds); outside them 'ms:' and epoch milliseconds
 * for JavaScript to format; NULL for ±infinity (nothing JavaScript could have written).
 */
export const isoTimestampSql = (col: string) =>
  `CASE WHEN ${col} >= '0001-01-01 00:00:00+00' AND ${col} < '10000-01-01 00:00:00+00' ` +
  `THEN to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') ` +
  `WHEN isfinite(${col}) THEN 'ms:' || floor(extract(epoch FROM ${col}) * 1000)::text END`;

/** A stream-key range [from, to) of audit_events; null bounds are open. */
export interface StreamRange {
  from: string | null;
  to: string | null;
}

// Column order of the chunk query, shared with AuditCopyCheck.
const C = {
  stream: 0,
  seq: 1,
  prevHash: 2,
  hash: 3,
  at: 4,
  actorId: 5,
  actorKind: 6,
  action: 7,
  outcome: 8,
  sessionId: 9,
  deviceId: 10,
  viewerId: 11,
  ticketRef: 12,
  reason: 13,
  data: 14,
  id: 15,
  head: 16,
};

/**
 * Every event of a stream range in (stream, seq) order, with what eventHash covers, its id, and on
 * the first event of each stream that stream's head ('seq:hash', or '-' when it has none).
 */
export function chunkQuery(range: StreamRange): string {
  const where = [
    range.from === null ? null : `e.stream >= ${escapeLiteral(range.from)}`,
    range.to === null ? null : `e.stream < ${escapeLiteral(range.to)}`,
  ].filter(Boolean);
  return `SELECT e.stream, e.seq, e.prev_hash, e.hash, ${isoTimestampSql('e.occurred_at')}, e.actor_id, e.actor_kind, e.action,
      e.outcome, e.session_id, e.device_id, e.viewer_id, e.ticket_ref, e.reason, e.data, e.id,
      CASE WHEN e.stream IS DISTINCT FROM lag(e.stream) OVER (ORDER BY e.stream, e.seq)
        THEN coalesce((SELECT format('%s:%s', h.seq, h.hash) FROM audit_stream_heads h WHERE h.stream = e.stream), '-') END
    FROM audit_events e ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY e.stream, e.seq`;
}

const OPEN = Buffer.from('[');
const COMMA = 0x2c;
const CLOSE = 0x5d;
const EMPTY = Buffer.from('{}');
/** Flat objects with more members than this take the general path. */
const MAX_FLAT_KEYS = 64;

/**
 * Recomputes eventHash from a COPY row of chunkQuery without building the event object: the
 * canonical JSON is written as bytes straight from the row, and only what the fast path cannot
 * prove equal (escaped text, nested or non-integer data, keys beyond ASCII) goes through
 * JSON.stringify and canonicalJson, the functions eventHash uses. test/integration/audit-verify.spec.ts
 * holds the two to the same bytes.
 */
export class AuditCopyCheck {
  private readonly out = new JsonWriter();
  /** Key start, key end, value start, value end of each member of the object being read. */
  private readonly entries = new Int32Array(4 * MAX_FLAT_KEYS);
  private readonly order = new Int32Array(MAX_FLAT_KEYS);
  /** The key XOR ipad (the HMAC inner block), kept in front of the body so one hash call covers both. */
  private readonly innerPad: Buffer;
  /** The key XOR opad, followed by room for the inner digest. */
  private readonly outer = Buffer.alloc(64 + 32);

  constructor(key: string) {
    // HMAC-SHA256 as RFC 2104 defines it (what createHmac computes), done with two one-shot
    // hashes: cheaper per event than setting up an HMAC context each time.
    let k = Buffer.from(key, 'utf8');
    if (k.length > 64) k = createHash('sha256').update(k).digest();
    this.innerPad = Buffer.alloc(64, 0x36);
    this.outer.fill(0x5c, 0, 64);
    for (let i = 0; i < k.length; i++) {
      this.innerPad[i]! ^= k[i]!;
      this.outer[i]! ^= k[i]!;
    }
  }

  /** The canonical body eventHash would hash for this row, or null when no event could produce it. */
  body(row: CopyRow): Buffer | null {
    return this.write(row) ? this.out.view(64) : null;
  }

  /** Writes the inner pad, then the body; false when no event could produce this row. */
  private write(row: CopyRow): boolean {
    const w = this.out;
    w.pos = 0;
    w.raw(this.innerPad);
    w.raw(OPEN);
    w.field(row, C.prevHash);
    w.byte(COMMA);
    w.field(row, C.stream);
    w.byte(COMMA);
    if (row.isNull(C.seq)) w.raw(NULL);
    else w.copy(row.line, row.start[C.seq]!, row.end[C.seq]!);
    w.byte(COMMA);
    if (!this.timestamp(row)) return false;
    for (let i = C.actorId; i <= C.reason; i++) {
      w.byte(COMMA);
      w.field(row, i);
    }
    w.byte(COMMA);
    if (!this.flatObject(row, C.data)) {
      const text = row.text(C.data);
      let data: unknown = null;
      if (text !== null) {
        try {
          data = JSON.parse(text);
        } catch {
          return false;
        }
      }
      const json = canonicalJson(data);
      w.reserve(json.length * 3);
      w.pos += w.buf.write(json, w.pos, 'utf8');
    }
    w.byte(CLOSE);
    return true;
  }

  /** Whether the row's hash field is HMAC-SHA256(key, canonical body). */
  hashMatches(row: CopyRow): boolean {
    if (!this.write(row)) return false;
    hash('sha256', this.out.view(0), 'buffer').copy(this.outer, 64);
    return row.equals(C.hash, hash('sha256', this.outer, 'hex'));
  }

  private timestamp(row: CopyRow): boolean {
    const i = C.at;
    if (row.isNull(i)) return false;
    if (row.line[row.start[i]!] === 0x6d /* m */) {
      const d = new Date(Number(row.text(i)!.slice(3)));
      if (Number.isNaN(d.getTime())) return false;
      this.out.string(d.toISOString());
      return true;
    }
    this.out.field(row, i);
    return true;
  }

  /**
   * Canonical JSON of a jsonb text that is a flat object: PostgreSQL writes `{"k": v, ...}` with
   * keys ordered by length; canonicalJson orders them by code unit, which for ASCII keys is byte
   * order. Takes only what round-trips through JSON.parse unchanged: unescaped strings, integers
   * of at most 15 digits, true, false, null. Returns false (writing nothing) for anything else.
   */
  private flatObject(row: CopyRow, i: number): boolean {
    if (row.flags[i]! & HAS_ESCAPE) return false;
    const b = row.line;
    const end = row.end[i]!;
    let p = row.start[i]!;
    const entries = this.entries;
    let n = 0;
    if (b[p++] !== 0x7b /* { */) return false;
    p = skipSpaces(b, p, end);
    if (b[p] === 0x7d /* } */) {
      if (skipSpaces(b, p + 1, end) !== end) return false;
      this.out.raw(EMPTY);
      return true;
    }
    const ascii = (row.flags[i]! & NON_ASCII) === 0;
    for (;;) {
      if (b[p] !== 0x22) return false;
      const ks = p + 1;
      let k = ks;
      while (k < end && b[k] !== 0x22) {
        if (!ascii && b[k]! >= 0x80) return false;
        k++;
      }
      if (k >= end) return false;
      p = skipSpaces(b, k + 1, end);
      if (b[p] !== 0x3a /* : */) return false;
      p = skipSpaces(b, p + 1, end);
      const vs = p;
      const c = b[p]!;
      if (c === 0x22) {
        p++;
        while (p < end && b[p] !== 0x22) p++;
        if (p >= end) return false;
        p++;
      } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
        if (c === 0x2d) p++;
        const ds = p;
        while (p < end && b[p]! >= 0x30 && b[p]! <= 0x39) p++;
        const digits = p - ds;
        if (digits === 0 || digits > 15 || (b[ds] === 0x30 && (digits > 1 || c === 0x2d))) return false;
      } else if (matches(b, p, end, 'true') || matches(b, p, end, 'null')) p += 4;
      else if (matches(b, p, end, 'false')) p += 5;
      else return false;
      if (n === MAX_FLAT_KEYS) return false;
      entries[4 * n] = ks;
      entries[4 * n + 1] = k;
      entries[4 * n + 2] = vs;
      entries[4 * n + 3] = p;
      n++;
      p = skipSpaces(b, p, end);
      if (b[p] === 0x2c) {
        p = skipSpaces(b, p + 1, end);
        continue;
      }
      if (b[p] !== 0x7d || skipSpaces(b, p + 1, end) !== end) return false;
      break;
    }
    // Insertion sort of the entries by key bytes (objects here have a handful of keys).
    const order = this.order;
    order[0] = 0;
    for (let x = 1; x < n; x++) {
      const cur = x;
      let y = x - 1;
      while (
        y >= 0 &&
        compareBytes(b, entries[order[y]! * 4]!, entries[order[y]! * 4 + 1]!, entries[cur * 4]!, entries[cur * 4 + 1]!) > 0
      ) {
        order[y + 1] = order[y]!;
        y--;
      }
      order[y + 1] = cur;
    }
    const w = this.out;
    w.byte(0x7b);
    for (let x = 0; x < n; x++) {
      const e = order[x]! * 4;
      if (x) w.byte(0x2c);
      w.copy(b, entries[e]! - 1, entries[e + 1]! + 1);
      w.byte(0x3a);
      w.copy(b, entries[e + 2]!, entries[e + 3]!);
    }
    w.byte(0x7d);
    return true;
  }
}

function skipSpaces(b: Buffer, p: number, end: number): number {
  while (p < end && b[p] === 0x20) p++;
  return p;
}

function matches(b: Buffer, p: number, end: number, word: string): boolean {
  if (p + word.length > end) return false;
  for (let k = 0; k < word.length; k++) if (b[p + k] !== word.charCodeAt(k)) return false;
  return true;
}

function compareBytes(b: Buffer, as: number, ae: number, bs: number, be: number): number {
  const n = Math.min(ae - as, be - bs);
  for (let k = 0; k < n; k++) {
    const d = b[as + k]! - b[bs + k]!;
    if (d) return d;
  }
  return ae - as - (be - bs);
}

/** Parses the head column of chunkQuery: null on rows that do not start a stream. */
function headOf(row: CopyRow): StreamHead | undefined {
  if (row.isNull(C.head)) return undefined;
  const text = row.text(C.head)!;
  if (text === '-') return null;
  const colon = text.indexOf(':');
  const seq = text.slice(0, colon);
  return { seq: /^-?\d+$/.test(seq) ? Number(seq) : null, hash: text.slice(colon + 1) || null };
}

/**
 * Verifies one stream range through `COPY (chunkQuery) TO STDOUT` on `client` (inside whatever
 * transaction the caller opened), feeding `walk`; processing is synchronous per row, so the
 * socket is read no faster than rows are checked and memory stays flat.
 */
export async function verifyRange(client: Client, check: AuditCopyCheck, range: StreamRange, walk: ChainWalk): Promise<void> {
  const row = new CopyRow();
  const id = () => row.text(C.id) ?? '';
  await copyOut(client, chunkQuery(range), (line) => {
    row.parse(line);
    const head = headOf(row);
    walk.event(
      row.text(C.stream) ?? '',
      row.isNull(C.seq) ? null : row.int(C.seq),
      row.text(C.prevHash),
      row.text(C.hash),
      id,
      check.hashMatches(row),
      head === undefined ? null : head,
    );
  }).done;
  walk.endStream();
}
