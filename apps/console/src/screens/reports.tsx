import { useState } from 'preact/hooks';
import { Result, get, query, resolveId } from '../api';
import { BarChart } from '../chart';
import { Failure, Field, TableWrap, formText, isoFromLocal, show, useLoad } from '../ui';

interface ReportInfo {
  name: string;
  title: string;
  description?: string;
  params?: unknown;
}

interface ReportResult {
  report: string;
  title: string;
  from?: string;
  to?: string;
  columns: { key: string; label: string }[];
  rows: Record<string, unknown>[];
}

/** The parameter names a report takes, whether the server lists them as names, objects or a map. */
function paramNames(params: unknown): string[] {
  if (Array.isArray(params)) {
    return params
      .map((p: unknown) => {
        if (typeof p === 'string') return p;
        const o = p as { name?: unknown; key?: unknown } | null;
        return o?.name ?? o?.key;
      })
      .filter((n): n is string => typeof n === 'string' && n !== '');
  }
  if (params && typeof params === 'object') return Object.keys(params);
  return ['from', 'to', 'collectionId'];
}

const LABELS: Record<string, [string, string?]> = {
  from: ['From'],
  to: ['To'],
  collectionId: ['Collection', 'collection id'],
  viewerId: ['Viewer', 'user name or id'],
  deviceId: ['Device', 'hostname or id'],
};

export function ReportsScreen({ name }: { name: string | undefined }) {
  const list = useLoad(() => get<{ items: ReportInfo[] }>('/v1/reports'), []);
  return (
    <section aria-labelledby="reports-h">
      <h1 id="reports-h">Reports</h1>
      {!list ? (
        <p>Loading the reports…</p>
      ) : !list.ok ? (
        <Failure result={list} what="Reports" />
      ) : (
        <>
          <nav aria-label="Reports">
            <ul class="report-list">
              {list.body.items.map((r) => (
                <li key={r.name}>
                  <a href={`#/reports/${r.name}`} aria-current={r.name === name ? 'page' : undefined}>
                    {r.title}
                  </a>
                  {r.description ? <small> — {r.description}</small> : null}
                </li>
              ))}
            </ul>
          </nav>
          {name ? <ReportRunner key={name} info={list.body.items.find((r) => r.name === name)} name={name} /> : null}
        </>
      )}
    </section>
  );
}

function ReportRunner({ info, name }: { info: ReportInfo | undefined; name: string }) {
  const [result, setResult] = useState<Result<ReportResult> | null>(null);
  const [params, setParams] = useState<Record<string, string | undefined> | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const names = paramNames(info?.params).filter((p) => p !== 'format');

  const run = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const p: Record<string, string | undefined> = {};
    setProblem(null);
    for (const n of names) {
      const v = formText(f, n);
      if (!v) continue;
      if (n === 'from' || n === 'to') p[n] = isoFromLocal(v);
      else if (n === 'viewerId' || n === 'deviceId') {
        const id = await resolveId(n === 'viewerId' ? 'principals' : 'devices', v);
        if (!id) {
          setProblem(`No ${n === 'viewerId' ? 'principal' : 'device'} "${v}" found.`);
          return;
        }
        p[n] = id;
      } else p[n] = v;
    }
    setParams(p);
    setResult(await get<ReportResult>(`/v1/reports/${encodeURIComponent(name)}${query({ ...p, format: 'json' })}`));
  };

  return (
    <section aria-labelledby="report-h">
      <h2 id="report-h">{info?.title ?? name}</h2>
      <form class="filters" onSubmit={(e) => void run(e)} aria-label={`Parameters of ${info?.title ?? name}`}>
        {names.map((n) => (
          <Field key={n} label={LABELS[n]?.[0] ?? n} hint={LABELS[n]?.[1]}>
            {n === 'from' || n === 'to' ? <input name={n} type="datetime-local" /> : <input name={n} type="text" autocomplete="off" />}
          </Field>
        ))}
        <button type="submit">Run report</button>
      </form>
      {problem ? (
        <p class="error" role="alert">
          {problem}
        </p>
      ) : null}
      {result && params ? <ReportOutput result={result} name={name} params={params} /> : null}
    </section>
  );
}

/**
 * What the chart shows: an aggregate report's first numeric column by its first text column; a
 * list report (no numbers) counted by its outcome, or else by its first text column that repeats.
 */
function chartOf(r: ReportResult): { title: string; bars: { label: string; value: number }[] } | null {
  if (!r.rows.length) return null;
  const numeric = r.columns.find((c) => r.rows.some((row) => typeof row[c.key] === 'number'));
  const texts = r.columns.filter((c) => c !== numeric && r.rows.some((row) => typeof row[c.key] === 'string'));
  if (numeric && texts[0]) {
    const label = texts[0];
    return {
      title: `${numeric.label} by ${label.label}`,
      bars: r.rows.map((row) => ({ label: show(row[label.key]), value: Number(row[numeric.key]) })),
    };
  }
  const distinct = (key: string) => new Set(r.rows.map((row) => show(row[key]))).size;
  const group = texts.find((c) => /outcome|state/i.test(c.key)) ?? texts.find((c) => distinct(c.key) < r.rows.length) ?? texts[0];
  if (!group) return null;
  const counts = new Map<string, number>();
  for (const row of r.rows) counts.set(show(row[group.key]), (counts.get(show(row[group.key])) ?? 0) + 1);
  return { title: `Rows by ${group.label}`, bars: [...counts].map(([label, value]) => ({ label, value })) };
}

function ReportOutput({
  result,
  name,
  params,
}: {
  result: Result<ReportResult>;
  name: string;
  params: Record<string, string | undefined>;
}) {
  if (!result.ok) return <Failure result={result} what="This report" />;
  const r = result.body;
  const chart = chartOf(r);
  const base = `/v1/reports/${encodeURIComponent(name)}`;
  return (
    <div class="report" data-testid="report-output">
      <p>
        {r.rows.length} row{r.rows.length === 1 ? '' : 's'}
        {r.from || r.to ? `, ${r.from ?? '…'} to ${r.to ?? '…'}` : ''}.{' '}
        <a href={`${base}${query({ ...params, format: 'csv' })}`} download={`${name}.csv`} data-testid="csv-link">
          Download CSV
        </a>{' '}
        ·{' '}
        <a href={`${base}${query({ ...params, format: 'ndjson' })}`} download={`${name}.ndjson`}>
          Download NDJSON
        </a>
      </p>
      {chart ? <BarChart title={chart.title} bars={chart.bars} /> : null}
      <TableWrap caption={r.title}>
        <thead>
          <tr>
            {r.columns.map((c) => (
              <th key={c.key} scope="col">
                {c.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {r.rows.length === 0 ? (
            <tr>
              <td colSpan={r.columns.length || 1}>No rows.</td>
            </tr>
          ) : (
            r.rows.map((row, i) => (
              <tr key={i}>
                {r.columns.map((c) => (
                  <td key={c.key}>{show(row[c.key])}</td>
                ))}
              </tr>
            ))
          )}
        </tbody>
      </TableWrap>
    </div>
  );
}
