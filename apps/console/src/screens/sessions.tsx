import { useEffect, useRef, useState } from 'preact/hooks';
import { Result, get, query, resolveId } from '../api';
import { ErrorBox, Failure, Field, formText, NameLink, TableWrap, isoFromLocal, when } from '../ui';

export interface Session {
  id: string;
  deviceId: string;
  viewerId: string;
  requesterId: string;
  type: string;
  access: string;
  reason: string | null;
  ticketRef: string | null;
  state: string;
  scheduleId: string | null;
  occurrenceAt: string | null;
  createdAt: string;
  stateChangedAt: string;
  startedAt: string | null;
  endedAt: string | null;
  failureCause: string | null;
  consentRule: string | null;
  notBefore: string | null;
}

interface Page {
  items: Session[];
  nextCursor: string | null;
}

export const STATES = [
  'requested',
  'scheduled',
  'validating',
  'eligible',
  'pushing_settings',
  'awaiting_consent',
  'active',
  'ended',
  'rejected',
  'denied',
  'consent_timeout',
  'failed',
  'cancelled',
  'expired',
  'interrupted',
];

/** How often the list asks again while shown (live updates by polling: the same scoped /v1 route, nothing new to secure). */
const POLL_MS = 4000;

type Filters = Record<string, string | undefined>;

/** A table of sessions; `fixed` filters (a device's, a principal's) are applied on top of nothing else. */
export function SessionTable({ filters, caption, live = true }: { filters: Filters; caption: string; live?: boolean }) {
  const [items, setItems] = useState<Session[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [failed, setFailed] = useState<Result<unknown> | null>(null);
  const [announce, setAnnounce] = useState('');
  /** The filters the rows on screen were loaded for (tests and assistive tech wait on it, not on time). */
  const [shown, setShown] = useState<string | null>(null);
  const key = JSON.stringify(filters);
  const itemsRef = useRef<Session[] | null>(null);
  itemsRef.current = items;

  useEffect(() => {
    let live_ = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    setItems(null);
    const load = async (first: boolean) => {
      const r = await get<Page>(`/v1/sessions${query({ ...filters, limit: 50 })}`);
      if (!live_) return;
      if (!r.ok) {
        setFailed(r);
        return;
      }
      setFailed(null);
      const before = new Map((itemsRef.current ?? []).map((s) => [s.id, s.state]));
      if (first) {
        setItems(r.body.items);
        setNext(r.body.nextCursor);
        setShown(key);
      } else {
        // Newest first: the fresh first page, then whatever older pages were loaded with "More".
        const fresh = new Set(r.body.items.map((s) => s.id));
        setItems([...r.body.items, ...(itemsRef.current ?? []).filter((s) => !fresh.has(s.id))]);
        const changed = r.body.items.filter((s) => before.get(s.id) !== s.state).length;
        if (changed) setAnnounce(`${changed} session${changed === 1 ? '' : 's'} new or changed state`);
      }
      if (live) timer = setTimeout(() => void load(false), POLL_MS);
    };
    void load(true);
    return () => {
      live_ = false;
      clearTimeout(timer);
    };
  }, [key, live]);

  const more = async () => {
    if (!next) return;
    const r = await get<Page>(`/v1/sessions${query({ ...filters, limit: 50, cursor: next })}`);
    if (r.ok) {
      setItems([...(items ?? []), ...r.body.items]);
      setNext(r.body.nextCursor);
    } else setFailed(r);
  };

  if (failed && !items) return <Failure result={failed} what="Sessions" />;
  if (!items) return <p aria-busy="true">Loading sessions…</p>;
  return (
    <div data-shown={shown}>
      <p class="sr-only" aria-live="polite">
        {announce}
      </p>
      {failed ? <ErrorBox error={failed.error} /> : null}
      <TableWrap caption={caption}>
        <thead>
          <tr>
            <th scope="col">Requested</th>
            <th scope="col">Device</th>
            <th scope="col">Viewer</th>
            <th scope="col">Type</th>
            <th scope="col">State</th>
            <th scope="col">Ticket</th>
            <th scope="col">Session</th>
          </tr>
        </thead>
        <tbody>
          {items.length === 0 ? (
            <tr>
              <td colSpan={7}>No sessions match.</td>
            </tr>
          ) : (
            items.map((s) => (
              <tr key={s.id} data-session={s.id}>
                <td>{when(s.createdAt)}</td>
                <td>
                  <NameLink kind="devices" id={s.deviceId} />
                </td>
                <td>
                  <NameLink kind="principals" id={s.viewerId} />
                </td>
                <td>
                  {s.type} ({s.access})
                </td>
                <td>
                  <span class={`state state-${s.state}`}>{s.state}</span>
                </td>
                <td>{s.ticketRef ?? '—'}</td>
                <td>
                  <a href={`#/sessions/${s.id}`} aria-label={`Open session ${s.id}`}>
                    Open
                  </a>
                </td>
              </tr>
            ))
          )}
        </tbody>
      </TableWrap>
      {next ? (
        <button type="button" onClick={() => void more()}>
          More sessions
        </button>
      ) : null}
    </div>
  );
}

export function SessionsScreen({ route }: { route: string }) {
  const initial = new URLSearchParams(route.split('?')[1] ?? '');
  const [filters, setFilters] = useState<Filters>(Object.fromEntries(initial.entries()));
  const [error, setError] = useState<string | null>(null);
  const [live, setLive] = useState(true);

  const apply = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const text = (k: string) => formText(f, k);
    const next: Filters = { state: text('state') || undefined, from: isoFromLocal(text('from')), to: isoFromLocal(text('to')) };
    setError(null);
    if (text('device')) {
      next.deviceId = (await resolveId('devices', text('device'))) ?? undefined;
      if (!next.deviceId) {
        setError(`No device "${text('device')}" in your scope.`);
        return;
      }
    }
    if (text('viewer')) {
      next.viewerId = (await resolveId('principals', text('viewer'))) ?? undefined;
      if (!next.viewerId) {
        setError(`No principal "${text('viewer')}" found.`);
        return;
      }
    }
    setFilters(next);
  };

  return (
    <section aria-labelledby="sessions-h">
      <h1 id="sessions-h">Sessions</h1>
      <form class="filters" onSubmit={(e) => void apply(e)} aria-label="Filter sessions">
        <Field label="State">
          <select name="state" defaultValue={filters.state ?? ''}>
            <option value="">any</option>
            {STATES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Device" hint="hostname or id">
          <input name="device" type="search" autocomplete="off" />
        </Field>
        <Field label="Viewer" hint="name or id">
          <input name="viewer" type="search" autocomplete="off" />
        </Field>
        <Field label="From">
          <input name="from" type="datetime-local" />
        </Field>
        <Field label="To">
          <input name="to" type="datetime-local" />
        </Field>
        <button type="submit">Apply filters</button>
        <label class="check">
          <input type="checkbox" checked={live} onChange={(e) => setLive(e.currentTarget.checked)} /> Live updates
        </label>
      </form>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      <SessionTable filters={filters} caption="Sessions, newest first" live={live} />
    </section>
  );
}
