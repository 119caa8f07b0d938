import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, Result, nameOf, routeMissing } from './api';

/** The current hash route, e.g. "/sessions/…" for "#/sessions/…". */
export function useRoute(): string {
  const read = () => decodeURIComponent(location.hash.replace(/^#/, '')) || '/sessions';
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

export const when = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : '—');
export const shortId = (id: string) => id.slice(0, 8);

/** A device's hostname or a principal's name, linked to its screen; the short id while (or when) it is unknown. */
export function NameLink({ kind, id }: { kind: 'devices' | 'principals'; id: string | null | undefined }) {
  const [name, setName] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    if (id) void nameOf(kind, id).then((n) => live && setName(n));
    return () => {
      live = false;
    };
  }, [kind, id]);
  if (!id) return <span>—</span>;
  return (
    <a href={`#/${kind}/${id}`} title={id}>
      {name ?? shortId(id)}
    </a>
  );
}

export function ErrorBox({ error }: { error: ApiError | null | undefined }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error.status ? `${error.status} ` : ''}
      {error.message}
    </p>
  );
}

/** What a screen shows for a failed read: "not available" for a route this server lacks, else the error. */
export function Failure({ result, what }: { result: Result<unknown>; what: string }) {
  if (routeMissing(result)) return <p class="note">{what} is not available on this server.</p>;
  if (result.status === 403)
    return (
      <p class="note">
        {what}: your role does not allow it ({result.error?.message}).
      </p>
    );
  return <ErrorBox error={result.error} />;
}

export function TableWrap({ caption, children }: { caption: string; children: ComponentChildren }) {
  return (
    <div class="table-wrap" tabIndex={0} role="region" aria-label={caption}>
      <table>
        <caption>{caption}</caption>
        {children}
      </table>
    </div>
  );
}

export function Field({ label, children, hint }: { label: string; children: ComponentChildren; hint?: string }) {
  return (
    <label class="field">
      <span>{label}</span>
      {children}
      {hint ? <small>{hint}</small> : null}
    </label>
  );
}

/** A value from the API shown as text: scalars as they are, lists joined, objects as compact JSON. */
export function show(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.map(show).join(', ') || '—';
  return JSON.stringify(v);
}

/** A form field's text, trimmed ('' when absent). */
export function formText(f: FormData, name: string): string {
  const v = f.get(name);
  return typeof v === 'string' ? v.trim() : '';
}

/** A datetime-local input's value as an ISO instant (the browser's zone), or undefined. */
export function isoFromLocal(v: string): string | undefined {
  if (!v) return undefined;
  const t = new Date(v);
  return Number.isNaN(t.getTime()) ? undefined : t.toISOString();
}

/** Loads once per change of `deps`; returns null while loading. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): T | null {
  const [value, setValue] = useState<T | null>(null);
  useEffect(() => {
    let live = true;
    setValue(null);
    void load().then((v) => live && setValue(v));
    return () => {
      live = false;
    };
  }, deps);
  return value;
}
