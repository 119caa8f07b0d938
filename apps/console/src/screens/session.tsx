import { useState } from 'preact/hooks';
import { Result, get, post } from '../api';
import { ErrorBox, Failure, NameLink, TableWrap, show, useLoad, when } from '../ui';
import type { Session } from './sessions';

interface Check {
  id: string;
  number: number;
  passed: boolean;
  detail: string;
}

interface Detail extends Session {
  timeline: { seq: number; at: string; action: string; state: string; actor: { id: string | null; kind: string }; reason: string | null }[];
  decision: { eligible: boolean; consentRule: string; checks: Check[]; evaluatedAt: string } | null;
  notice: { remindMinutes: number | null; askApproval: boolean; state: string; approval: string | null } | null;
}

const OPEN_STATES = ['requested', 'scheduled', 'validating', 'eligible', 'pushing_settings', 'awaiting_consent', 'active'];

function Actor({ actor }: { actor: { id: string | null; kind: string } }) {
  if (actor.kind === 'principal' && actor.id) return <NameLink kind="principals" id={actor.id} />;
  if (actor.kind === 'device' && actor.id) return <NameLink kind="devices" id={actor.id} />;
  return <span>{actor.kind}</span>;
}

export function SessionScreen({ id }: { id: string }) {
  const [version, setVersion] = useState(0);
  const result = useLoad(() => get<Detail>(`/v1/sessions/${encodeURIComponent(id)}`), [id, version]);
  const [cancelled, setCancelled] = useState<Result<unknown> | null>(null);
  if (!result) return <p>Loading the session…</p>;
  if (!result.ok) return <Failure result={result} what="This session" />;
  const s = result.body;
  const cancel = async () => {
    const r = await post(`/v1/sessions/${encodeURIComponent(id)}/cancel`, { reason: 'cancelled from the web console' });
    setCancelled(r);
    if (r.ok) setVersion(version + 1);
  };
  return (
    <article aria-labelledby="session-h">
      <h1 id="session-h">
        Session <code>{s.id.slice(0, 8)}</code>: <span class={`state state-${s.state}`}>{s.state}</span>
      </h1>
      <dl class="facts">
        <dt>Device</dt>
        <dd>
          <NameLink kind="devices" id={s.deviceId} /> (<a href={`#/devices/${s.deviceId}`}>settings and who can control it</a>)
        </dd>
        <dt>Viewer</dt>
        <dd>
          <NameLink kind="principals" id={s.viewerId} />
        </dd>
        <dt>Requested by</dt>
        <dd>
          <NameLink kind="principals" id={s.requesterId} />
        </dd>
        <dt>Type</dt>
        <dd>
          {s.type}, {s.access} access
        </dd>
        <dt>Reason</dt>
        <dd>{s.reason ?? '—'}</dd>
        <dt>Ticket</dt>
        <dd data-testid="ticket">{s.ticketRef ?? 'none'}</dd>
        <dt>Schedule</dt>
        <dd>
          {s.scheduleId ? (
            <>
              <a href={`/v1/schedules/${s.scheduleId}`} target="_blank" rel="noopener">
                schedule {s.scheduleId.slice(0, 8)}
              </a>
              , occurrence {when(s.occurrenceAt)}
            </>
          ) : s.notBefore ? (
            `booked for ${when(s.notBefore)}`
          ) : (
            'none (asked for now)'
          )}
        </dd>
        <dt>Requested</dt>
        <dd>{when(s.createdAt)}</dd>
        <dt>Started / ended</dt>
        <dd>
          {when(s.startedAt)} / {when(s.endedAt)}
        </dd>
        {s.failureCause ? (
          <>
            <dt>Failure</dt>
            <dd>{s.failureCause}</dd>
          </>
        ) : null}
        {s.notice ? (
          <>
            <dt>Notice to the user</dt>
            <dd>
              {s.notice.state}
              {s.notice.askApproval ? `, pre-approval ${s.notice.approval ?? 'not answered'}` : ''}
            </dd>
          </>
        ) : null}
      </dl>
      {OPEN_STATES.includes(s.state) ? (
        <p>
          <button type="button" onClick={() => void cancel()}>
            {s.state === 'active' ? 'End this session' : 'Cancel this session'}
          </button>
        </p>
      ) : null}
      {cancelled && !cancelled.ok ? <ErrorBox error={cancelled.error} /> : null}

      <section aria-labelledby="decision-h">
        <h2 id="decision-h">Decision</h2>
        {s.decision ? (
          <>
            <p data-testid="verdict">
              {s.decision.eligible ? 'Eligible' : 'Not eligible'} (evaluated {when(s.decision.evaluatedAt)}); consent:{' '}
              {s.decision.consentRule}.
            </p>
            <TableWrap caption="Every eligibility check with its outcome">
              <thead>
                <tr>
                  <th scope="col">#</th>
                  <th scope="col">Check</th>
                  <th scope="col">Outcome</th>
                  <th scope="col">Detail</th>
                </tr>
              </thead>
              <tbody>
                {s.decision.checks.map((c) => (
                  <tr key={c.id} class={c.passed ? 'passed' : 'failed'}>
                    <td>{c.number}</td>
                    <td>{c.id}</td>
                    <td>{c.passed ? '✓ passed' : '✗ failed'}</td>
                    <td>{c.detail}</td>
                  </tr>
                ))}
              </tbody>
            </TableWrap>
          </>
        ) : (
          <p>Not evaluated yet.</p>
        )}
      </section>

      <section aria-labelledby="timeline-h">
        <h2 id="timeline-h">Timeline</h2>
        <TableWrap caption="Every step of this session, oldest first, with who made it">
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">When</th>
              <th scope="col">Step</th>
              <th scope="col">State</th>
              <th scope="col">Actor</th>
              <th scope="col">Reason</th>
            </tr>
          </thead>
          <tbody>
            {s.timeline.map((t) => (
              <tr key={t.seq}>
                <td>{t.seq}</td>
                <td>{when(t.at)}</td>
                <td>{t.action}</td>
                <td>{t.state}</td>
                <td>
                  <Actor actor={t.actor} />
                </td>
                <td>{show(t.reason)}</td>
              </tr>
            ))}
          </tbody>
        </TableWrap>
        <p>
          <a href={`/v1/audit/export?sessionId=${s.id}`} download={`session-${s.id}.ndjson`}>
            Export this session's audit events (NDJSON)
          </a>
        </p>
      </section>
    </article>
  );
}
