import { csvField, csvLine } from './report-csv';

describe('report CSV', () => {
  it('writes plain text, numbers and booleans as they are, and null as an empty field', () => {
    expect(csvLine(['WS-1', 3, 0.25, true, null, undefined])).toBe('WS-1,3,0.25,true,,\r\n');
  });

  it('quotes a field holding a comma, a quote or a line break, doubling quotes (RFC 4180)', () => {
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('line\nbreak')).toBe('"line\nbreak"');
    expect(csvField('cr\rlf')).toBe('"cr\rlf"');
    expect(csvLine(['x', 'y"z'])).toBe('x,"y""z"\r\n');
  });

  it.each(['=SUM(A1:A2)', '+1+1', '-2+3', '@cmd', '\tTAB', '\rCR'])('makes %j inert with a leading apostrophe', (cell) => {
    const out = csvField(cell);
    expect(out.replace(/^"/, '').startsWith("'")).toBe(true);
    expect(out).toContain(cell.slice(1));
  });

  it('keeps a formula-looking cell inert when it also needs quotes', () => {
    expect(csvField('=HYPERLINK("http://x","y")')).toBe('"\'=HYPERLINK(""http://x"",""y"")"');
  });

  it('leaves numbers alone: a negative number is a number, not a formula', () => {
    expect(csvField(-5)).toBe('-5');
  });

  it('does not touch text where those characters are not first', () => {
    expect(csvField('a=b')).toBe('a=b');
    expect(csvField('INC-42')).toBe('INC-42');
  });

  it('writes instants in ISO 8601', () => {
    expect(csvField(new Date('2026-10-01T12:00:00Z'))).toBe('2026-10-01T12:00:00.000Z');
  });

  it('keeps non-ASCII text as it is', () => {
    expect(csvField('é😀')).toBe('é😀');
  });
});
