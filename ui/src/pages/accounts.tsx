// Accounts of the center, for admins: the list with filters, adding one, and per account its role and addresses,
// disabling, a new password, its API tokens (a new one shown once) and removal. And, for every role, the form that
// changes one's own password.
import { useState } from 'preact/hooks';
import { del, enc, get, patch, post, qs, type Me } from '../api.ts';
import { Badge, Empty, Section, Show, Time, useLoad } from '../components.tsx';
import { FlashNote, NextPage, why, type Flash } from '../list.tsx';
import type { AccountItem, Page, TokenItem } from '../types.ts';

const ROLES = ['admin', 'auditor', 'user'] as const;

type Done = (text: string, ok: boolean) => void;

/** Addresses as typed: one per line, or separated by commas or spaces. */
const addressList = (text: string) => text.split(/[\s,;]+/).filter(Boolean);

function AddForm({ done }: { done: Done }) {
  const empty = { name: '', role: 'user', password: '', addresses: '' };
  const [f, setF] = useState(empty);
  const set = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: (e.currentTarget as HTMLInputElement).value });
  async function submit(e: Event) {
    e.preventDefault();
    try {
      const a = await post<AccountItem>('/api/v1/accounts', { name: f.name.trim(), role: f.role, password: f.password, addresses: addressList(f.addresses) });
      setF(empty);
      done(`Added ${a.name} (${a.role}${a.addresses.length ? `, ${a.addresses.join(', ')}` : ''}).`, true);
    } catch (err) {
      done(`Not added: ${why(err)}`, false);
    }
  }
  return (
    <form class="search add-account" onSubmit={submit}>
      <label>
        Name
        <input name="name" required autoComplete="off" value={f.name} onInput={set('name')} />
      </label>
      <label>
        Role
        <select name="role" value={f.role} onChange={set('role')}>
          {ROLES.map((r) => (
            <option key={r}>{r}</option>
          ))}
        </select>
      </label>
      <label>
        Password
        <input name="password" type="password" required minLength={10} autoComplete="new-password" value={f.password} onInput={set('password')} />
      </label>
      <label>
        Addresses
        <input name="addresses" size={32} value={f.addresses} placeholder={f.role === 'user' ? 'ann@example.com, …' : 'not needed: sees all mail'} onInput={set('addresses')} />
      </label>
      <button type="submit">Add account</button>
    </form>
  );
}

function EditForm({ a, done }: { a: AccountItem; done: Done }) {
  const [role, setRole] = useState<string>(a.role);
  const [addresses, setAddresses] = useState(a.addresses.join(', '));
  async function submit(e: Event) {
    e.preventDefault();
    try {
      const r = await patch<AccountItem>(`/api/v1/accounts/${enc(a.name)}`, { role, addresses: addressList(addresses) });
      done(`Changed ${r.name}: ${r.role}${r.addresses.length ? `, ${r.addresses.join(', ')}` : ''}.`, true);
    } catch (err) {
      done(`Not changed: ${why(err)}`, false);
    }
  }
  return (
    <form class="search" onSubmit={submit}>
      <label>
        Role of {a.name}
        <select name="role" value={role} onChange={(e) => setRole((e.currentTarget as HTMLSelectElement).value)}>
          {ROLES.map((r) => (
            <option key={r}>{r}</option>
          ))}
        </select>
      </label>
      <label>
        Addresses of {a.name}
        <input name="addresses" size={40} value={addresses} onInput={(e) => setAddresses((e.currentTarget as HTMLInputElement).value)} />
      </label>
      <button type="submit">Save</button>
    </form>
  );
}

function PasswordForm({ a, done }: { a: AccountItem; done: Done }) {
  const [pw, setPw] = useState('');
  async function submit(e: Event) {
    e.preventDefault();
    try {
      const r = await post<{ sessions_ended: number }>(`/api/v1/accounts/${enc(a.name)}/password`, { password: pw });
      setPw('');
      done(`New password set for ${a.name}${r.sessions_ended ? `; ${r.sessions_ended} session(s) signed out` : ''}.`, true);
    } catch (err) {
      done(`Password not set: ${why(err)}`, false);
    }
  }
  return (
    <form class="search" onSubmit={submit}>
      <label>
        New password for {a.name}
        <input name="password" type="password" required minLength={10} autoComplete="new-password" value={pw} onInput={(e) => setPw((e.currentTarget as HTMLInputElement).value)} />
      </label>
      <button type="submit">Set password</button>
    </form>
  );
}

function Tokens({ a, changed }: { a: AccountItem; changed: () => void }) {
  const st = useLoad(() => get<{ items: TokenItem[] }>(`/api/v1/accounts/${enc(a.name)}/tokens`), [a.name]);
  const [label, setLabel] = useState('');
  const [days, setDays] = useState('');
  const [made, setMade] = useState<{ id: string; token: string }>();
  const [flash, setFlash] = useState<Flash>();

  async function create(e: Event) {
    e.preventDefault();
    const ttl = days.trim() ? Number(days) : undefined;
    if (ttl !== undefined && !(Number.isInteger(ttl) && ttl > 0)) return setFlash({ ok: false, text: 'Days must be a whole number, or empty for no expiry.' });
    try {
      const t = await post<TokenItem & { token: string }>(`/api/v1/accounts/${enc(a.name)}/tokens`, { ...(label.trim() && { label: label.trim() }), ...(ttl && { ttl_days: ttl }) });
      setMade({ id: t.id, token: t.token });
      setFlash(undefined);
      setLabel('');
      setDays('');
    } catch (err) {
      setFlash({ ok: false, text: `Token not made: ${why(err)}` });
    }
    st.reload();
    changed();
  }

  async function revoke(t: TokenItem) {
    try {
      await del(`/api/v1/accounts/${enc(a.name)}/tokens/${enc(t.id)}`);
      setFlash({ ok: true, text: `Revoked ${t.id}${t.label ? ` (${t.label})` : ''}: it stops working at once.` });
      if (made?.id === t.id) setMade(undefined);
    } catch (err) {
      setFlash({ ok: false, text: `Not revoked: ${why(err)}` });
    }
    st.reload();
    changed();
  }

  return (
    <Section title={`API tokens of ${a.name}`}>
      <form class="search" onSubmit={create}>
        <label>
          Label
          <input name="label" value={label} placeholder="what it is for" onInput={(e) => setLabel((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label>
          Days
          <input name="days" size={5} value={days} placeholder="never" onInput={(e) => setDays((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <button type="submit">Make token</button>
      </form>
      {made && (
        <div class="note flash new-token" role="status">
          New token {made.id}: <code>{made.token}</code>
          <br />
          Copy it now: it is shown only this once, and only its hash is kept. Send it as "Authorization: Bearer …".
        </div>
      )}
      <FlashNote flash={flash} />
      <Show state={st} what="account tokens">
        {(d) =>
          d.items.length === 0 ? (
            <Empty>No tokens.</Empty>
          ) : (
            <table class="tokens">
              <thead>
                <tr>
                  <th>Id</th>
                  <th>Label</th>
                  <th>Created</th>
                  <th>Last used</th>
                  <th>Expires</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {d.items.map((t) => (
                  <tr key={t.id} data-id={t.id}>
                    <td class="addr">{t.id}</td>
                    <td>{t.label || <span class="muted">—</span>}</td>
                    <td>
                      <Time ms={t.created_at} />
                    </td>
                    <td>
                      <Time ms={t.last_used_at} />
                    </td>
                    <td>{t.expires_at === null ? 'never' : <Time ms={t.expires_at} />}</td>
                    <td class="buttons">
                      <button type="button" onClick={() => revoke(t)}>
                        Revoke
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Show>
    </Section>
  );
}

type Panel = { name: string; what: 'edit' | 'password' | 'tokens' } | undefined;

export function Accounts({ me }: { me: Me }) {
  // The list is not even asked for by other roles: the server would refuse it anyway.
  if (me.role !== 'admin') return <p class="note error">This page is for admins; you are signed in as a {me.role}.</p>;
  return <AccountsList me={me} />;
}

function AccountsList({ me }: { me: Me }) {
  const [role, setRole] = useState('');
  const [state, setState] = useState('');
  const [cursor, setCursor] = useState<string | null>(null);
  const [flash, setFlash] = useState<Flash>();
  const [panel, setPanel] = useState<Panel>();
  const [confirming, setConfirming] = useState<string>();
  const st = useLoad(() => get<Page<AccountItem>>(`/api/v1/accounts${qs({ role, disabled: state, limit: 100, cursor })}`), [role, state, cursor]);

  const done: Done = (text, ok) => {
    setFlash({ ok, text });
    if (ok) {
      setPanel(undefined);
      st.reload();
    }
  };

  async function setDisabled(a: AccountItem, disabled: boolean) {
    try {
      const r = await patch<AccountItem & { sessions_ended: number }>(`/api/v1/accounts/${enc(a.name)}`, { disabled });
      done(disabled ? `Disabled ${r.name}${r.sessions_ended ? `; ${r.sessions_ended} session(s) signed out` : ''}; its tokens stop working.` : `Enabled ${r.name}.`, true);
    } catch (err) {
      done(`Not ${disabled ? 'disabled' : 'enabled'}: ${why(err)}`, false);
    }
  }

  async function remove(a: AccountItem) {
    setConfirming(undefined);
    try {
      await del(`/api/v1/accounts/${enc(a.name)}`);
      done(`Removed ${a.name}, with its tokens and sessions.`, true);
    } catch (err) {
      done(`Not removed: ${why(err)}`, false);
    }
  }

  const toggle = (name: string, what: NonNullable<Panel>['what']) => setPanel(panel?.name === name && panel.what === what ? undefined : { name, what });

  return (
    <div>
      <h1>Accounts</h1>
      <AddForm done={done} />
      <FlashNote flash={flash} />
      <form class="search" onSubmit={(e) => e.preventDefault()}>
        <label>
          Show role
          <select name="filter-role" value={role} onChange={(e) => (setCursor(null), setRole((e.currentTarget as HTMLSelectElement).value))}>
            <option value="">any</option>
            {ROLES.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <label>
          State
          <select name="filter-state" value={state} onChange={(e) => (setCursor(null), setState((e.currentTarget as HTMLSelectElement).value))}>
            <option value="">any</option>
            <option value="false">enabled</option>
            <option value="true">disabled</option>
          </select>
        </label>
      </form>
      <Show state={st} what="accounts">
        {(d) => {
          const open = d.items.find((a) => a.name === panel?.name);
          return d.items.length === 0 ? (
            <Empty>No accounts{role || state ? ' match' : ''}.</Empty>
          ) : (
            <>
              <table class="accounts">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>Role</th>
                    <th>Addresses</th>
                    <th>Created</th>
                    <th>Disabled</th>
                    <th class="num">Tokens</th>
                    <th class="num">Sessions</th>
                    <th />
                  </tr>
                </thead>
                <tbody>
                  {d.items.map((a) => (
                    <tr key={a.name} data-name={a.name}>
                      <td>
                        <b>{a.name}</b>
                        {a.name === me.name && <span class="muted"> (you)</span>}
                      </td>
                      <td>
                        <Badge text={a.role} />
                      </td>
                      <td class="addr">{a.addresses.join(', ') || <span class="muted">{a.role === 'user' ? 'none: sees no mail' : 'all mail'}</span>}</td>
                      <td>
                        <Time ms={a.created_at} />
                      </td>
                      <td>{a.disabled ? <Badge text="disabled" /> : 'no'}</td>
                      <td class="num">{a.tokens}</td>
                      <td class="num">{a.sessions}</td>
                      <td class="buttons">
                        <button type="button" onClick={() => toggle(a.name, 'edit')}>
                          Edit
                        </button>{' '}
                        {/* Your own account is never disabled or removed from here (the server refuses it too). */}
                        {a.name !== me.name && (
                          <>
                            <button type="button" onClick={() => setDisabled(a, !a.disabled)}>
                              {a.disabled ? 'Enable' : 'Disable'}
                            </button>{' '}
                          </>
                        )}
                        <button type="button" onClick={() => toggle(a.name, 'password')}>
                          Password
                        </button>{' '}
                        <button type="button" onClick={() => toggle(a.name, 'tokens')}>
                          Tokens
                        </button>{' '}
                        {a.name === me.name ? null : confirming === a.name ? (
                          <button type="button" class="danger" onClick={() => remove(a)}>
                            Confirm delete
                          </button>
                        ) : (
                          <button type="button" onClick={() => setConfirming(a.name)}>
                            Delete
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <NextPage cursor={d.next_cursor} go={setCursor} />
              {open && panel?.what === 'edit' && <EditForm key={`e-${open.name}`} a={open} done={done} />}
              {open && panel?.what === 'password' && <PasswordForm key={`p-${open.name}`} a={open} done={done} />}
              {open && panel?.what === 'tokens' && <Tokens key={`t-${open.name}`} a={open} changed={st.reload} />}
            </>
          );
        }}
      </Show>
    </div>
  );
}

/** The page every role reaches from the header: who is signed in, and the password form. */
export function MyAccount({ me }: { me: Me }) {
  return (
    <div>
      <h1>My account</h1>
      <p>
        Signed in as <b>{me.name}</b> (<span class="muted">{me.role}</span>){me.addresses.length > 0 && <>, for {me.addresses.join(', ')}</>}.
      </p>
      <OwnPassword />
    </div>
  );
}

/** Changing one's own password: any role, with the current one; the other sessions of the account end. */
export function OwnPassword() {
  const empty = { current: '', next: '', again: '' };
  const [f, setF] = useState(empty);
  const [flash, setFlash] = useState<Flash>();
  const set = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: (e.currentTarget as HTMLInputElement).value });
  async function submit(e: Event) {
    e.preventDefault();
    if (f.next !== f.again) return setFlash({ ok: false, text: 'The two new passwords differ; nothing was changed.' });
    try {
      const r = await post<{ sessions_ended: number }>('/api/v1/me/password', { current_password: f.current, new_password: f.next });
      setF(empty);
      setFlash({ ok: true, text: `Your password is changed${r.sessions_ended ? `; your ${r.sessions_ended} other session(s) were signed out` : ''}.` });
    } catch (err) {
      setFlash({ ok: false, text: `Not changed: ${why(err)}` });
    }
  }
  return (
    <Section title="Change my password">
      <form class="search own-password" onSubmit={submit}>
        <label>
          Current password
          <input name="current_password" type="password" required autoComplete="current-password" value={f.current} onInput={set('current')} />
        </label>
        <label>
          New password
          <input name="new_password" type="password" required minLength={10} autoComplete="new-password" value={f.next} onInput={set('next')} />
        </label>
        <label>
          New password again
          <input name="new_password_again" type="password" required minLength={10} autoComplete="new-password" value={f.again} onInput={set('again')} />
        </label>
        <button type="submit">Change password</button>
      </form>
      <FlashNote flash={flash} />
    </Section>
  );
}
