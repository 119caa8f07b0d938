import { Fragment } from 'preact';
import { useState } from 'preact/hooks';
import { Result, get, query, resolveId } from '../api';
import { Failure, Field, TableWrap, formText, isoFromLocal, show } from '../ui';

interface Verification {
  ok: boolean;
  eventsChecked: number;
  streamsChecked: number;
  problems: { stream: string; seq: number; problem: string }[];
  [k: string]: unknown;
}

/** The verification's checkpoint fields, whatever they are called (checkpoint, lastCheckpoint, …). */
function checkpointOf(v: Verification): [string, unknown][] {
  return Object.entries(v).filter(([k]) => /checkpoint/i.test(k));
}

export function VerifyScreen() {
  const [result, setResult] = useState<Result<Verification> | null>(null);
  const [busy, setBusy] = useState(false);
  const [exportHref, setExportHref] = useState('/v1/audit/export');
  const [problem, setProblem] = useState<string | null>(null);

  const verify = async () => {
    setBusy(true);
    setResult(await get<Verification>('/v1/audit/verify'));
    setBusy(false);
  };

  const filter = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const text = (k: string) => formText(f, k);
    setProblem(null);
    const deviceId = text('device') ? await resolveId('devices', text('device')) : undefined;
    if (deviceId === null) {
      setProblem(`No device "${text('device')}" in your scope.`);
      return;
    }
    setExportHref(
      `/v1/audit/export${query({ from: isoFromLocal(text('from')), to: isoFromLocal(text('to')), deviceId, action: text('action') })}`,
    );
  };

  const v = result?.ok ? result.body : null;
  return (
    <section aria-labelledby="verify-h">
      <h1 id="verify-h">Verify the audit trail</h1>
      <p>
        <button type="button" onClick={() => void verify()} disabled={busy} aria-describedby="verify-help">
          {busy ? 'Verifying…' : 'Verify now'}
        </button>
      </p>
      <p id="verify-help" class="note">
        Checks every event's chain link, every stream head and each session's version; needs audit reading over all collections.
      </p>
      <div aria-live="polite">
        {result && !result.ok ? <Failure result={result} what="Verification" /> : null}
        {v ? (
          <>
            <p data-testid="verify-verdict" class={v.ok ? 'ok' : 'error'}>
              {v.ok ? '✓ The trail is intact' : '✗ The trail is broken'}: {v.eventsChecked} events in {v.streamsChecked} streams checked.
            </p>
            {checkpointOf(v).length ? (
              <dl class="facts">
                {checkpointOf(v).map(([k, val]) => (
                  <Fragment key={k}>
                    <dt>{k}</dt>
                    <dd>{show(val)}</dd>
                  </Fragment>
                ))}
              </dl>
            ) : (
              <p class="note">This server reports no checkpoint.</p>
            )}
            {v.problems.length ? (
              <TableWrap caption="Where the trail breaks">
                <thead>
                  <tr>
                    <th scope="col">Stream</th>
                    <th scope="col">Seq</th>
                    <th scope="col">Problem</th>
                  </tr>
                </thead>
                <tbody>
                  {v.problems.map((p, i) => (
                    <tr key={i}>
                      <td>{p.stream}</td>
                      <td>{p.seq}</td>
                      <td>{p.problem}</td>
                    </tr>
                  ))}
                </tbody>
              </TableWrap>
            ) : null}
          </>
        ) : null}
      </div>

      <h2 id="export-h">Export audit events</h2>
      <form class="filters" onSubmit={(e) => void filter(e)} aria-labelledby="export-h">
        <Field label="From">
          <input name="from" type="datetime-local" />
        </Field>
        <Field label="To">
          <input name="to" type="datetime-local" />
        </Field>
        <Field label="Device" hint="hostname or id">
          <input name="device" type="search" autocomplete="off" />
        </Field>
        <Field label="Action" hint="e.g. session.rejected">
          <input name="action" type="text" autocomplete="off" pattern="[a-z_.]{1,64}" />
        </Field>
        <button type="submit">Set export filters</button>
      </form>
      {problem ? (
        <p class="error" role="alert">
          {problem}
        </p>
      ) : null}
      <p>
        <a class="button" href={exportHref} download="audit.ndjson" data-testid="audit-export">
          Export audit events (NDJSON)
        </a>{' '}
        <small>Only the events of your scope are exported.</small>
      </p>
    </section>
  );
}
