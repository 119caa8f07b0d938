import { Result } from '../api';
import { Failure, TableWrap, show } from '../ui';

/** One way in: who (or which device), which session type, which access, and the chain that grants it. */
export interface AccessEntry {
  principal?: { id: string; name: string; kind: string };
  device?: { id: string; hostname: string };
  sessionType?: string;
  type?: string;
  access?: string;
  via?: unknown[];
}

/** A chain step as text: its kind and its detail (role assignment → collection → permitted viewer or local administrator → settings). */
export function stepText(step: unknown): string {
  if (typeof step === 'string') return step;
  if (step && typeof step === 'object') {
    const o = step as Record<string, unknown>;
    const kind = typeof o.step === 'string' ? o.step : typeof o.kind === 'string' ? o.kind : '';
    for (const k of ['detail', 'label', 'description', 'text']) {
      if (typeof o[k] === 'string') return kind ? `${kind.replace(/_/g, ' ')}: ${o[k]}` : o[k];
    }
    const name = ['name', 'role', 'collection', 'setName', 'entry', 'rule'].map((k) => o[k]).find((v) => v !== undefined);
    if (kind || name !== undefined) return [kind.replace(/_/g, ' '), name === undefined ? '' : show(name)].filter(Boolean).join(': ');
  }
  return show(step);
}

/** The entries of an access review answer: `entries`, `items` or `devices`, whichever the server sends. */
export function entriesOf(body: unknown): AccessEntry[] {
  const b = body as Record<string, unknown> | null;
  for (const k of ['entries', 'items', 'devices', 'reach']) if (Array.isArray(b?.[k])) return b[k] as AccessEntry[];
  return Array.isArray(body) ? (body as AccessEntry[]) : [];
}

export function AccessTable({ result, caption, what }: { result: Result<unknown> | null; caption: string; what: string }) {
  if (!result) return <p>Loading the access review…</p>;
  if (!result.ok) return <Failure result={result} what={what} />;
  const entries = entriesOf(result.body);
  return (
    <TableWrap caption={caption}>
      <thead>
        <tr>
          <th scope="col">Who / what</th>
          <th scope="col">Session type</th>
          <th scope="col">Access</th>
          <th scope="col">Granted through</th>
        </tr>
      </thead>
      <tbody>
        {entries.length === 0 ? (
          <tr>
            <td colSpan={4}>Nobody.</td>
          </tr>
        ) : (
          entries.map((e, i) => (
            <tr key={i}>
              <td>
                {e.principal ? (
                  <a href={`#/principals/${e.principal.id}`}>
                    {e.principal.name} ({e.principal.kind})
                  </a>
                ) : e.device ? (
                  <a href={`#/devices/${e.device.id}`}>{e.device.hostname}</a>
                ) : (
                  '—'
                )}
              </td>
              <td>{e.sessionType ?? e.type ?? '—'}</td>
              <td>{e.access ?? '—'}</td>
              <td>
                {e.via?.length ? (
                  <ol class="chain">
                    {e.via.map((step, j) => (
                      <li key={j}>{stepText(step)}</li>
                    ))}
                  </ol>
                ) : (
                  '—'
                )}
              </td>
            </tr>
          ))
        )}
      </tbody>
    </TableWrap>
  );
}
