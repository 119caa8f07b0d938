import { useState } from 'preact/hooks';
import { get, query } from '../api';
import { Failure, Field, formText, TableWrap, useLoad } from '../ui';
import { AccessTable } from './access';
import { SessionTable } from './sessions';

interface Ref {
  id: string;
  name: string;
  kind: string;
}

interface Principal extends Ref {
  displayName: string | null;
  disabled: boolean;
  groups?: Ref[];
  allGroups?: Ref[];
  members?: Ref[];
}

const refs = (list: Ref[] | undefined) =>
  list?.length
    ? list.map((r, i) => (
        <span key={r.id}>
          {i ? ', ' : ''}
          <a href={`#/principals/${r.id}`}>{r.name}</a>
        </span>
      ))
    : 'none';

export function PrincipalsScreen() {
  const [prefix, setPrefix] = useState('');
  const result = useLoad(() => get<{ items: Principal[] }>(`/v1/principals${query({ name: prefix, limit: 100 })}`), [prefix]);
  return (
    <section aria-labelledby="principals-h">
      <h1 id="principals-h">Principals</h1>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setPrefix(formText(new FormData(e.currentTarget), 'name'));
        }}
      >
        <Field label="Name starts with">
          <input name="name" type="search" autocomplete="off" />
        </Field>
        <button type="submit">Find principals</button>
      </form>
      {!result ? (
        <p>Loading…</p>
      ) : !result.ok ? (
        <Failure result={result} what="The principal list" />
      ) : (
        <TableWrap caption="Users, groups and services">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Kind</th>
              <th scope="col">Status</th>
            </tr>
          </thead>
          <tbody>
            {result.body.items.map((p) => (
              <tr key={p.id}>
                <td>
                  <a href={`#/principals/${p.id}`}>{p.name}</a>
                </td>
                <td>{p.kind}</td>
                <td>{p.disabled ? 'disabled' : 'enabled'}</td>
              </tr>
            ))}
          </tbody>
        </TableWrap>
      )}
    </section>
  );
}

export function PrincipalScreen({ id }: { id: string }) {
  const enc = encodeURIComponent(id);
  const principal = useLoad(() => get<Principal>(`/v1/principals/${enc}`), [id]);
  const reach = useLoad(() => get(`/v1/access-review/principals/${enc}`), [id]);
  if (!principal) return <p>Loading the principal…</p>;
  if (!principal.ok) return <Failure result={principal} what="This principal" />;
  const p = principal.body;
  return (
    <article aria-labelledby="principal-h">
      <h1 id="principal-h">
        {p.name} <small>({p.kind})</small>
      </h1>
      <dl class="facts">
        <dt>Display name</dt>
        <dd>{p.displayName ?? '—'}</dd>
        <dt>Status</dt>
        <dd>{p.disabled ? 'disabled' : 'enabled'}</dd>
        <dt>Groups</dt>
        <dd>{refs(p.allGroups ?? p.groups)}</dd>
        {p.members ? (
          <>
            <dt>Members</dt>
            <dd>{refs(p.members)}</dd>
          </>
        ) : null}
      </dl>
      <section aria-labelledby="reach-h">
        <h2 id="reach-h">What {p.name} can reach</h2>
        <AccessTable result={reach} caption={`Devices ${p.name} can start a session on, and why`} what="The access review" />
      </section>
      <section aria-labelledby="psessions-h">
        <h2 id="psessions-h">Sessions with {p.name} as viewer</h2>
        <SessionTable filters={{ viewerId: p.id }} caption={`Sessions viewed by ${p.name}, newest first`} live={false} />
      </section>
    </article>
  );
}
