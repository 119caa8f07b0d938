import { CopyRow, HAS_ESCAPE, JsonWriter, NEEDS_JSON_ESCAPE, NON_ASCII, decodeCopyText } from './copy-text';

const line = (s: string) => Buffer.from(`${s}\n`, 'utf8');

describe('COPY text rows', () => {
  it('splits fields and flags what needs decoding or escaping', () => {
    const row = new CopyRow();
    expect(row.parse(line('plain\t\\N\tsay "hi"\tb\\\\s\té\t'))).toBe(6);
    expect([0, 1, 2, 3, 4, 5].map((i) => row.text(i))).toEqual(['plain', null, 'say "hi"', 'b\\s', 'é', '']);
    expect([...row.flags.subarray(0, 6)]).toEqual([0, HAS_ESCAPE, NEEDS_JSON_ESCAPE, HAS_ESCAPE, NON_ASCII, 0]);
    expect(row.isNull(1)).toBe(true);
    expect(row.isNull(3)).toBe(false);
  });

  it('grows past 32 fields', () => {
    const row = new CopyRow();
    const fields = Array.from({ length: 40 }, (_, i) => `f${i}`);
    expect(row.parse(line(fields.join('\t')))).toBe(40);
    expect(row.text(39)).toBe('f39');
  });

  it('reads integers and nothing else as integers', () => {
    const row = new CopyRow();
    row.parse(line('42\t-7\t0\t\\N\t1.5\t-\tx'));
    expect([0, 1, 2, 3, 4, 5, 6].map((i) => row.int(i))).toEqual([42, -7, 0, null, null, null, null]);
  });

  it('decodes every COPY escape', () => {
    const src = Buffer.from('a\\tb\\nc\\rd\\be\\ff\\vg\\\\h\\101\\x42\\q\\');
    expect(decodeCopyText(src, 0, src.length).toString('latin1')).toBe('a\tb\nc\rd\be\ff\vg\\hABq\\');
    const utf8 = Buffer.from('\\303\\251');
    expect(decodeCopyText(utf8, 0, utf8.length).toString('utf8')).toBe('é');
  });
});

describe('JsonWriter', () => {
  it('writes each field as JSON.stringify would, or null', () => {
    const texts = ['plain', 'say "hi"', 'tab\there', 'back\\slash', 'é中文😀', '\u0001\u007f', '\u2028', ''];
    const encoded = texts.map((t) => t.replace(/\\/g, '\\\\').replace(/\t/g, '\\t'));
    const row = new CopyRow();
    row.parse(line([...encoded, '\\N'].join('\t')));
    const w = new JsonWriter();
    for (let i = 0; i <= texts.length; i++) {
      if (i) w.byte(0x2c);
      w.field(row, i);
    }
    expect(w.view().toString('utf8')).toBe([...texts.map((t) => JSON.stringify(t)), 'null'].join(','));
  });

  it('grows its buffer', () => {
    const w = new JsonWriter();
    const big = 'x'.repeat(200_000);
    w.string(big);
    w.string(big);
    expect(w.view().toString()).toBe(JSON.stringify(big) + JSON.stringify(big));
  });
});
