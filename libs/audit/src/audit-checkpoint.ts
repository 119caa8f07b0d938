import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { canonicalJson } from '@rcflow/domain';

/** One stream's head as a checkpoint records it: [stream, seq, hash]. */
export type CheckpointHead = [stream: string, seq: number, hash: string];

/** What a checkpoint's signature covers: small, whatever the number of streams. */
export interface CheckpointHeader {
  version: 1;
  alg: 'hmac-sha256';
  /** ISO 8601, when the heads were read. */
  takenAt: string;
  streams: number;
  /** SHA-256 (hex) over the sorted heads, one `JSON.stringify([stream, seq, hash])` line each. */
  heads: string;
}

/** A signed checkpoint of every audit stream's head, as kept outside the database. */
export interface AuditCheckpoint extends CheckpointHeader {
  signature: string;
  /** Every head, sorted by stream (code-unit order), one per stream. */
  list: CheckpointHead[];
}

/** A checkpoint file or Redis copy that cannot be trusted: unreadable, inconsistent or wrongly signed. */
export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

/** Keeps a checkpoint's signature apart from every other HMAC under the audit key (events' hashes). */
const DOMAIN = 'rcflow audit checkpoint\n';
const HASH = /^[0-9a-f]{64}$/;

const byStream = (a: CheckpointHead, b: CheckpointHead) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/** SHA-256 over heads already sorted by stream. */
export function headsDigest(sorted: readonly CheckpointHead[]): string {
  const h = createHash('sha256');
  for (const head of sorted) h.update(`${JSON.stringify(head)}\n`);
  return h.digest('hex');
}

function sign(key: string, header: CheckpointHeader): string {
  const { version, alg, takenAt, streams, heads } = header;
  return createHmac('sha256', key)
    .update(DOMAIN + canonicalJson({ version, alg, takenAt, streams, heads }))
    .digest('hex');
}

/** Signs the heads read at `takenAt` (in any order) under the audit key. */
export function signCheckpoint(key: string, heads: CheckpointHead[], takenAt: Date): AuditCheckpoint {
  const list = [...heads].sort(byStream);
  const header: CheckpointHeader = {
    version: 1,
    alg: 'hmac-sha256',
    takenAt: takenAt.toISOString(),
    streams: list.length,
    heads: headsDigest(list),
  };
  return { ...header, signature: sign(key, header), list };
}

/** The checkpoint as stored (file and Redis alike): gzip'd JSON. */
export function serialiseCheckpoint(cp: AuditCheckpoint): Buffer {
  return gzipSync(JSON.stringify(cp));
}

/**
 * Reads stored bytes back and checks everything before anyone relies on them: the shape, that the
 * list is sorted with one entry per stream, that its digest and count are the signed ones, and the
 * signature. Throws CheckpointError saying what is wrong.
 */
export function parseCheckpoint(key: string, bytes: Buffer): AuditCheckpoint {
  let raw: unknown;
  try {
    raw = JSON.parse(gunzipSync(bytes).toString('utf8'));
  } catch {
    throw new CheckpointError("is not a readable checkpoint (gzip'd JSON)");
  }
  const cp = raw as Partial<AuditCheckpoint> | null;
  if (!cp || typeof cp !== 'object' || cp.version !== 1) throw new CheckpointError('has an unknown version');
  if (cp.alg !== 'hmac-sha256') throw new CheckpointError(`is signed with an unknown algorithm ${JSON.stringify(cp.alg)}`);
  if (typeof cp.takenAt !== 'string' || Number.isNaN(Date.parse(cp.takenAt)) || new Date(cp.takenAt).toISOString() !== cp.takenAt)
    throw new CheckpointError('has no valid takenAt');
  if (typeof cp.heads !== 'string' || !HASH.test(cp.heads) || typeof cp.signature !== 'string' || !HASH.test(cp.signature))
    throw new CheckpointError('has no valid digest or signature');
  const streams = cp.streams;
  const list: unknown = cp.list;
  if (typeof streams !== 'number' || !Number.isInteger(streams) || !Array.isArray(list) || list.length !== streams)
    throw new CheckpointError('does not hold as many heads as it says');
  const header: CheckpointHeader = { version: 1, alg: cp.alg, takenAt: cp.takenAt, streams, heads: cp.heads };
  const expected = Buffer.from(sign(key, header), 'hex');
  if (!timingSafeEqual(expected, Buffer.from(cp.signature, 'hex')))
    throw new CheckpointError('signature does not match: the checkpoint was altered or signed under another key');
  let previous: string | null = null;
  const heads: CheckpointHead[] = [];
  for (const h of list as unknown[]) {
    if (!isHead(h)) throw new CheckpointError('holds a malformed head');
    if (previous !== null && !(previous < h[0])) throw new CheckpointError('heads are not sorted by stream, one each');
    previous = h[0];
    heads.push(h);
  }
  if (headsDigest(heads) !== cp.heads) throw new CheckpointError('heads do not match their signed digest: the list was altered');
  return { ...header, signature: cp.signature, list: heads };
}

function isHead(h: unknown): h is CheckpointHead {
  if (!Array.isArray(h) || h.length !== 3) return false;
  const [stream, seq, hash] = h as unknown[];
  return (
    typeof stream === 'string' &&
    typeof seq === 'number' &&
    Number.isInteger(seq) &&
    seq >= 1 &&
    typeof hash === 'string' &&
    HASH.test(hash)
  );
}
