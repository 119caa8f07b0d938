import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, forgetNames, get, post, whenSignedOut } from './api';
import { ErrorBox, useRoute } from './ui';
import { SessionsScreen } from './screens/sessions';
import { SessionScreen } from './screens/session';
import { DeviceScreen, DevicesScreen } from './screens/device';
import { PrincipalScreen, PrincipalsScreen } from './screens/principal';
import { ReportsScreen } from './screens/reports';
import { VerifyScreen } from './screens/verify';

export interface Me {
  principal: { id: string; name: string; kind: string };
  groups: string[];
  grants: { role: string; collectionIds: string[] | null }[];
}

function SignIn({ onSignedIn }: { onSignedIn: (me: Me) => void }) {
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const input = form.elements.namedItem('apiKey') as HTMLInputElement;
    setBusy(true);
    // The key goes to the server once, in this request's body; the form is cleared whatever the answer,
    // so nothing in the page holds it afterwards (the server answers with an httpOnly cookie).
    const r = await post<Me>('/console/session', { apiKey: input.value });
    form.reset();
    setBusy(false);
    if (r.ok) onSignedIn(r.body);
    else setError(r.error);
  };
  return (
    <main id="main" class="signin">
      <h1>rcflow console</h1>
      <form onSubmit={(e) => void submit(e)} aria-describedby="signin-help">
        <label class="field">
          <span>API key</span>
          <input name="apiKey" type="password" autocomplete="off" spellcheck={false} required placeholder="rcf_…" />
        </label>
        <p id="signin-help" class="note">
          Your key is exchanged for a session cookie and not kept in the browser. The session ends after 30 minutes unused, or 8 hours.
        </p>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        <ErrorBox error={error} />
      </form>
    </main>
  );
}

const NAV: [string, string][] = [
  ['/sessions', 'Sessions'],
  ['/devices', 'Devices'],
  ['/principals', 'Principals'],
  ['/reports', 'Reports'],
  ['/verify', 'Verify & export'],
];

function Shell({ me, onSignOut }: { me: Me; onSignOut: () => void }) {
  const route = useRoute();
  const parts = route.split('?')[0]!.split('/').filter(Boolean);
  const [section, id] = [parts[0] ?? 'sessions', parts[1]];
  let screen;
  switch (section) {
    case 'sessions':
      screen = id ? <SessionScreen id={id} /> : <SessionsScreen route={route} />;
      break;
    case 'devices':
      screen = id ? <DeviceScreen id={id} /> : <DevicesScreen />;
      break;
    case 'principals':
      screen = id ? <PrincipalScreen id={id} /> : <PrincipalsScreen />;
      break;
    case 'reports':
      screen = <ReportsScreen name={id} />;
      break;
    case 'verify':
      screen = <VerifyScreen />;
      break;
    default:
      screen = <p>Nothing here. Choose a screen above.</p>;
  }
  const roles = [...new Set(me.grants.map((g) => `${g.role}${g.collectionIds ? ' (some collections)' : ''}`))].join(', ');
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header>
        <strong class="brand">rcflow console</strong>
        <nav aria-label="Screens">
          <ul>
            {NAV.map(([href, label]) => (
              <li key={href}>
                <a href={`#${href}`} aria-current={`/${section}` === href ? 'page' : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="me">
          <span data-testid="signed-in-as">
            Signed in as <b>{me.principal.name}</b>
            {roles ? ` — ${roles}` : ' — no roles'}
          </span>
          <button type="button" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {screen}
      </main>
    </>
  );
}

function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  useEffect(() => {
    whenSignedOut(() => setMe(null));
    void get<Me>('/console/session').then((r) => setMe(r.ok ? r.body : null));
  }, []);
  const signOut = async () => {
    await post('/console/session/logout');
    forgetNames();
    setMe(null);
  };
  if (me === undefined) return <p>Loading…</p>;
  if (me === null)
    return (
      <SignIn
        onSignedIn={(m) => {
          forgetNames();
          setMe(m);
        }}
      />
    );
  return <Shell me={me} onSignOut={() => void signOut()} />;
}

render(<App />, document.getElementById('app')!);
