/** Human output: short lines and aligned tables; --json prints the API's objects instead. */

const pad2 = (n: number) => String(n).padStart(2, '0');

/** HH:MM:SS on the local clock. */
export function clock(iso: string | null | undefined): string {
  if (!iso) return '--:--:--';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '--:--:--';
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** YYYY-MM-DD HH:MM:SS on the local clock. */
export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '-';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '-';
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${clock(iso)}`;
}

/** Rows under a header, columns padded to their widest cell (the last column is not padded). */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** A short id for tables: the first block of a UUID. */
export const shortId = (id: string | null | undefined): string => (id ? id.slice(0, 8) : '-');

/** A value as one line of text, for free text that may hold line breaks. */
export const oneLine = (s: string | null | undefined): string => (s ?? '').replace(/\s+/g, ' ').trim();
