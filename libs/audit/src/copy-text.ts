const TAB = 0x09;
const NL = 0x0a;
const BACKSLASH = 0x5c;
const QUOTE = 0x22;

/** Set on a field that holds a backslash: a COPY escape sequence, or the NULL marker `\N`. */
export const HAS_ESCAPE = 1;
/** Set on a field that holds a byte JSON must escape inside a string: `"` or a control character. */
export const NEEDS_JSON_ESCAPE = 2;
/** Set on a field that holds a byte >= 0x80 (UTF-8 beyond ASCII). */
export const NON_ASCII = 4;

const FIELD_END = 8;
/** Per byte: 0 for plain ASCII, FIELD_END for the tab, else the flags it sets on its field. */
const CLASS = (() => {
  const t = new Uint8Array(256);
  for (let b = 0; b < 0x20; b++) t[b] = NEEDS_JSON_ESCAPE;
  t[QUOTE] = NEEDS_JSON_ESCAPE;
  t[BACKSLASH] = HAS_ESCAPE;
  for (let b = 0x80; b < 0x100; b++) t[b] = NON_ASCII;
  t[TAB] = FIELD_END;
  return t;
})();

/**
 * One row of `COPY ... TO STDOUT` in text format, split into fields without copying: offsets into
 * the line, and per field what it contains, so callers take a fast path when nothing needs decoding.
 * Reused from row to row (`parse` resets it). Accessors take a field index below `count` (so
 * within start/end/flags) and read bytes between a field's start and end (within line): the `!`s
 * below state that, with no run-time check on this hot path.
 */
export class CopyRow {
  line: Buffer = Buffer.alloc(0);
  count = 0;
  start = new Int32Array(32);
  end = new Int32Array(32);
  flags = new Uint8Array(32);

  /** Splits a line (with or without its trailing newline); returns the number of fields. */
  parse(line: Buffer): number {
    let stop = line.length;
    if (stop > 0 && line[stop - 1] === NL) stop--;
    this.line = line;
    let n = 0;
    let s = 0;
    let f = 0;
    for (let i = 0; i < stop; i++) {
      const c = CLASS[line[i]!]!; // i < stop <= line.length; a byte indexes all 256 entries
      if (c === 0) continue;
      if (c === FIELD_END) {
        this.put(n++, s, i, f);
        s = i + 1;
        f = 0;
      } else f |= c;
    }
    this.put(n++, s, stop, f);
    this.count = n;
    return n;
  }

  private put(i: number, s: number, e: number, f: number): void {
    if (i >= this.start.length) {
      const grow = <T extends Int32Array | Uint8Array>(a: T, make: (n: number) => T): T => {
        const b = make(a.length * 2);
        b.set(a);
        return b;
      };
      this.start = grow(this.start, (n) => new Int32Array(n));
      this.end = grow(this.end, (n) => new Int32Array(n));
      this.flags = grow(this.flags, (n) => new Uint8Array(n));
    }
    this.start[i] = s;
    this.end[i] = e;
    this.flags[i] = f;
  }

  /** Whether field i is SQL NULL (written `\N`). */
  isNull(i: number): boolean {
    const s = this.start[i]!;
    return this.end[i]! - s === 2 && this.line[s] === BACKSLASH && this.line[s + 1] === 0x4e;
  }

  /** Field i as text (COPY escapes decoded), or null. */
  text(i: number): string | null {
    if (this.isNull(i)) return null;
    const s = this.start[i]!;
    const e = this.end[i]!;
    const f = this.flags[i]!;
    if ((f & HAS_ESCAPE) === 0) return f & NON_ASCII ? this.line.toString('utf8', s, e) : this.line.toString('latin1', s, e);
    return decodeCopyText(this.line, s, e).toString('utf8');
  }

  /** Field i as raw bytes with COPY escapes decoded (a view when there were none), or null. */
  bytes(i: number): Buffer | null {
    if (this.isNull(i)) return null;
    const s = this.start[i]!;
    const e = this.end[i]!;
    return this.flags[i]! & HAS_ESCAPE ? decodeCopyText(this.line, s, e) : this.line.subarray(s, e);
  }

  /** Field i as an integer (decimal digits, optional minus), or null for NULL or anything else. */
  int(i: number): number | null {
    let p = this.start[i]!;
    const e = this.end[i]!;
    if (p === e || this.flags[i] !== 0) return null;
    let neg = false;
    if (this.line[p] === 0x2d) {
      neg = true;
      p++;
      if (p === e) return null;
    }
    let v = 0;
    for (; p < e; p++) {
      const d = this.line[p]! - 0x30;
      if (d < 0 || d > 9) return null;
      v = v * 10 + d;
    }
    return neg ? -v : v;
  }

  /** Whether field i is exactly `text` (ASCII). */
  equals(i: number, text: string): boolean {
    const s = this.start[i]!;
    if (this.end[i]! - s !== text.length) return false;
    for (let k = 0; k < text.length; k++) if (this.line[s + k] !== text.charCodeAt(k)) return false;
    return true;
  }
}

/** Decodes COPY text escapes (`\b \f \n \r \t \v \\`, octal `\ooo`, hex `\xhh`, any other `\c` = c) into bytes. */
export function decodeCopyText(line: Buffer, s: number, e: number): Buffer {
  const out = Buffer.allocUnsafe(e - s);
  let o = 0;
  for (let i = s; i < e; i++) {
    const b = line[i]!; // s <= i < e <= line.length, here and below
    if (b !== BACKSLASH || i + 1 === e) {
      out[o++] = b;
      continue;
    }
    const c = line[++i]!;
    switch (c) {
      case 0x62:
        out[o++] = 0x08;
        break; // b
      case 0x66:
        out[o++] = 0x0c;
        break; // f
      case 0x6e:
        out[o++] = 0x0a;
        break; // n
      case 0x72:
        out[o++] = 0x0d;
        break; // r
      case 0x74:
        out[o++] = 0x09;
        break; // t
      case 0x76:
        out[o++] = 0x0b;
        break; // v
      case 0x78: {
        // x: one or two hex digits
        let v = 0;
        let k = 0;
        for (; k < 2 && i + 1 < e && isHex(line[i + 1]!); k++) v = v * 16 + hexValue(line[++i]!);
        out[o++] = k ? v & 0xff : c;
        break;
      }
      default:
        if (c >= 0x30 && c <= 0x37) {
          // one to three octal digits
          let v = c - 0x30;
          for (let k = 0; k < 2 && i + 1 < e && line[i + 1]! >= 0x30 && line[i + 1]! <= 0x37; k++) v = v * 8 + (line[++i]! - 0x30);
          out[o++] = v & 0xff;
        } else out[o++] = c;
    }
  }
  return out.subarray(0, o);
}

const isHex = (b: number) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
const hexValue = (b: number) => (b <= 0x39 ? b - 0x30 : (b | 0x20) - 0x57);

/**
 * Builds JSON text into one growing buffer, straight from COPY fields: a field that needs no
 * escaping is copied byte for byte between quotes, anything else goes through JSON.stringify.
 * Either way the result equals JSON.stringify of the field's text (PostgreSQL text is valid
 * UTF-8, so it holds no lone surrogates, the one thing JSON.stringify escapes beyond `"`, `\` and
 * control characters).
 */
export class JsonWriter {
  buf = Buffer.allocUnsafe(1 << 16);
  pos = 0;

  reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** Appends pre-encoded bytes. */
  raw(b: Uint8Array): void {
    this.reserve(b.length);
    const buf = this.buf;
    let p = this.pos;
    // eslint-disable-next-line @typescript-eslint/prefer-for-of -- an indexed loop needs no iterator on this hot path
    for (let i = 0; i < b.length; i++) buf[p++] = b[i]!;
    this.pos = p;
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.pos++] = b;
  }

  /** Appends bytes of a source buffer. */
  copy(src: Buffer, s: number, e: number): void {
    this.reserve(e - s);
    if (e - s > 48) src.copy(this.buf, this.pos, s, e);
    else {
      const buf = this.buf;
      let p = this.pos;
      for (let i = s; i < e; i++) buf[p++] = src[i]!;
    }
    this.pos += e - s;
  }

  /** Appends JSON.stringify(s). */
  string(s: string): void {
    const json = JSON.stringify(s);
    this.reserve(json.length * 3);
    this.pos += this.buf.write(json, this.pos, 'utf8');
  }

  /** Appends field i of a COPY row as a JSON string, or `null` for SQL NULL. */
  field(row: CopyRow, i: number): void {
    const f = row.flags[i]!;
    if (f & HAS_ESCAPE) {
      const t = row.text(i);
      if (t === null) this.raw(NULL);
      else this.string(t);
    } else if (f & NEEDS_JSON_ESCAPE) {
      this.string(row.line.toString('utf8', row.start[i], row.end[i]));
    } else {
      const s = row.start[i]!;
      const e = row.end[i]!;
      this.reserve(e - s + 2);
      this.buf[this.pos++] = QUOTE;
      this.copy(row.line, s, e);
      this.buf[this.pos++] = QUOTE;
    }
  }

  /** The bytes written since `from`. */
  view(from = 0): Buffer {
    return this.buf.subarray(from, this.pos);
  }
}

export const NULL = Buffer.from('null');
