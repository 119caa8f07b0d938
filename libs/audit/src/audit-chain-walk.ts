import { GENESIS_HASH } from './audit-chain';

export interface AuditProblem {
  stream: string;
  seq: number | null;
  eventId: string | null;
  problem: string;
}

/** A stream's head as stored in audit_stream_heads; null when the stream has none. */
export type StreamHead = { seq: number | null; hash: string | null } | null;

/**
 * Checks events fed in (stream, seq) order: sequence numbers count up from 1 without gaps, each
 * event links to its predecessor's hash (the first to GENESIS_HASH), and where a stream ends its
 * last event is what the stream's head records. Keeps one stream's state at a time, so memory
 * does not grow with the trail. Problems are kept in arrival order, at most `maxProblems`.
 */
export class ChainWalk {
  readonly problems: AuditProblem[] = [];
  events = 0;
  streams = 0;
  private stream: string | null = null;
  private seq: number | null = 0;
  private hash: string | null = GENESIS_HASH;
  private head: StreamHead = null;

  constructor(private readonly maxProblems: number) {}

  private add(p: AuditProblem): void {
    if (this.problems.length < this.maxProblems) this.problems.push(p);
  }

  /**
   * One event. `head` is read only on the first event of a stream. `hashOk`: whether the
   * event's stored hash recomputes from its content and its prev_hash. `id` is called only
   * to name the event in a problem, during this call.
   */
  event(
    stream: string,
    seq: number | null,
    prevHash: string | null,
    hash: string | null,
    id: () => string,
    hashOk: boolean,
    head: StreamHead,
  ): void {
    this.events++;
    if (stream !== this.stream) {
      this.endStream();
      this.stream = stream;
      this.seq = 0;
      this.hash = GENESIS_HASH;
      this.head = head;
      this.streams++;
    }
    const expected = (this.seq ?? 0) + 1;
    if (seq !== expected) {
      this.add({ stream, seq, eventId: id(), problem: `expected seq ${expected}, found ${seq}: events missing or reordered` });
    }
    if (prevHash !== this.hash) {
      this.add({
        stream,
        seq,
        eventId: id(),
        problem: 'prev_hash does not match the previous event: an event was removed, inserted or reordered',
      });
    }
    if (!hashOk) {
      this.add({ stream, seq, eventId: id(), problem: 'hash does not match the stored content: the event was altered' });
    }
    this.seq = seq;
    this.hash = hash;
  }

  /** Closes the stream in progress (call once after the last event). */
  endStream(): void {
    if (this.stream === null) return;
    const head = this.head;
    if (!head) {
      this.add({ stream: this.stream, seq: this.seq, eventId: null, problem: 'stream has events but no head' });
    } else if (head.seq !== this.seq || head.hash !== this.hash) {
      this.add({
        stream: this.stream,
        seq: this.seq,
        eventId: null,
        problem: `last event is seq ${this.seq} but the head records seq ${head.seq}: events were removed or added`,
      });
    }
    this.stream = null;
  }
}
