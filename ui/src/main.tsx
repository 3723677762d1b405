// The center's single-page app: who is signed in, the navigation by role, and which page a path shows.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, del, get, setSession, type Me } from './api.ts';
import { interceptLinks, match, navigate, useLocation } from './router.ts';
import { Login } from './pages/login.tsx';
import { Overview } from './pages/overview.tsx';
import { Messages } from './pages/messages.tsx';
import { Queue } from './pages/queue.tsx';
import { MessageStory } from './pages/message.tsx';
import { Quarantine } from './pages/quarantine.tsx';
import { Policies } from './pages/policies.tsx';
import { Clusters } from './pages/clusters.tsx';
import { ClusterPage } from './pages/cluster.tsx';
import { EventsPage } from './pages/events.tsx';
import { MailboxPage, Mailboxes } from './pages/mailboxes.tsx';
import { Settings } from './pages/settings.tsx';
import { Accounts, MyAccount } from './pages/accounts.tsx';
import './style.css';

const STAFF = ['admin', 'auditor'];

const NAV: { path: string; label: string; roles: string[] }[] = [
  { path: '/', label: 'Overview', roles: STAFF },
  { path: '/messages', label: 'Messages', roles: STAFF },
  { path: '/queue', label: 'Queue', roles: STAFF },
  { path: '/quarantine', label: 'Quarantine', roles: ['admin', 'auditor', 'user'] },
  { path: '/policies', label: 'Policies', roles: STAFF },
  { path: '/clusters', label: 'Clusters', roles: STAFF },
  { path: '/mailboxes', label: 'Mailbox activity', roles: STAFF },
  { path: '/events', label: 'Events', roles: STAFF },
  { path: '/settings', label: 'Settings', roles: STAFF },
  { path: '/accounts', label: 'Accounts', roles: ['admin'] },
];

function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, true), [to]);
  return null;
}

function Page({ me, path, query }: { me: Me; path: string; query: URLSearchParams }) {
  const staff = STAFF.includes(me.role);
  if (path === '/' && !staff) return <Redirect to="/quarantine" />;
  if (path === '/') return <Overview />;
  if (path === '/quarantine') return <Quarantine me={me} />;
  if (path === '/password') return <MyAccount me={me} />;
  if (!staff) return <p class="note error">This page is for admins and auditors; you are signed in as a {me.role}.</p>;
  if (path === '/messages') return <Messages />;
  if (path === '/queue') return <Queue me={me} />;
  let m = match('/messages/:id', path);
  if (m) return <MessageStory id={m.id} />;
  if (path === '/policies') return <Policies me={me} />;
  if (path === '/clusters') return <Clusters />;
  m = match('/clusters/:id', path);
  if (m) return <ClusterPage me={me} id={m.id} />;
  if (path === '/mailboxes') return <Mailboxes me={me} q={query.get('q') ?? ''} />;
  m = match('/mailboxes/:user', path);
  if (m) return <MailboxPage me={me} user={m.user} />;
  if (path === '/settings') return <Settings q={query.get('q') ?? ''} />;
  if (path === '/events') return <EventsPage query={query} />;
  if (path === '/accounts') return <Accounts me={me} />;
  return <p class="note error">There is no page at this address.</p>;
}

function App() {
  const loc = useLocation();
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [why, setWhy] = useState<string>();

  useEffect(() => {
    setSession(undefined, () => {
      setMe(null);
      setWhy('Your session ended; sign in again.');
    });
    get<Me>('/api/v1/session').then(
      (m) => {
        setSession(m);
        setMe(m);
      },
      (err) => {
        setMe(null);
        if (err instanceof ApiError && err.unavailable) setWhy('This server has no accounts yet: signing in to the center is not available.');
      },
    );
  }, []);

  if (me === undefined) return <p class="note">Loading…</p>;
  if (me === null || loc.path === '/login') {
    return (
      <Login
        notice={why}
        onSignedIn={(m) => {
          setSession(m);
          setWhy(undefined);
          setMe(m);
          navigate(STAFF.includes(m.role) ? '/' : '/quarantine', true);
        }}
      />
    );
  }

  async function signOut() {
    await del('/api/v1/session').catch(() => undefined);
    setSession(undefined);
    setMe(null);
    setWhy('Signed out.');
  }

  const here = (p: string) => (p === '/' ? loc.path === '/' : loc.path === p || loc.path.startsWith(p + '/'));
  return (
    <>
      <header>
        <span class="brand">Postern</span>
        <nav>
          {NAV.filter((n) => n.roles.includes(me.role)).map((n) => (
            <a key={n.path} href={`/ui${n.path === '/' ? '/' : n.path}`} class={here(n.path) ? 'here' : ''} aria-current={here(n.path) ? 'page' : undefined}>
              {n.label}
            </a>
          ))}
        </nav>
        <span class="who">
          {me.name} <span class="muted">({me.role})</span>{' '}
          <button type="button" class="link" onClick={() => navigate('/password')}>
            Change password
          </button>{' '}
          <button type="button" class="link" onClick={signOut}>
            Sign out
          </button>
        </span>
      </header>
      <main>
        <Page me={me} path={loc.path} query={loc.query} />
      </main>
    </>
  );
}

interceptLinks();
render(<App />, document.getElementById('app')!);
