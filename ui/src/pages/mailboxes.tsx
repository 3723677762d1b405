// Mailbox activity: find a mailbox user, see where it logged in from, its failures and the attacks on it, and its
// audit trail when it is audited; admins switch its audit on and off, and edit the list of audited users.
import { useState } from 'preact/hooks';
import { del, enc, get, post, qs, type Me } from '../api.ts';
import { Badge, Empty, Section, Show, Time, useLoad } from '../components.tsx';
import { FlashNote, ShowList, why, type Flash } from '../list.tsx';
import { navigate } from '../router.ts';
import type { AuditUser, MailboxActivity, MailboxItem, Page } from '../types.ts';

function AuditedUsers({ admin }: { admin: boolean }) {
  const st = useLoad(() => get<{ items: AuditUser[] }>('/api/v1/audit/users'), []);
  const [pattern, setPattern] = useState('');
  const [flash, setFlash] = useState<Flash>();

  async function add(e: Event) {
    e.preventDefault();
    try {
      const u = await post<AuditUser>('/api/v1/audit/users', { pattern: pattern.trim() });
      setPattern('');
      setFlash({ ok: true, text: `Audited: ${u.pattern}, from its next login.` });
    } catch (err) {
      setFlash({ ok: false, text: `Not added: ${why(err)}` });
    }
    st.reload();
  }

  async function remove(p: string) {
    try {
      await del(`/api/v1/audit/users/${enc(p)}`);
      setFlash({ ok: true, text: `No longer audited: ${p}.` });
    } catch (err) {
      setFlash({ ok: false, text: `Not removed: ${why(err)}` });
    }
    st.reload();
  }

  return (
    <Section title="Audited users">
      {admin && (
        <form class="search" onSubmit={add}>
          <label>
            Pattern
            <input name="pattern" required value={pattern} placeholder="ceo@example.org, *@board.example.org" onInput={(e) => setPattern((e.currentTarget as HTMLInputElement).value)} />
          </label>
          <button type="submit">Audit</button>
        </form>
      )}
      <FlashNote flash={flash} />
      <ShowList state={st} what="audit users" empty="Nobody is audited.">
        {(d) => (
          <table class="audited">
            <thead>
              <tr>
                <th>Pattern</th>
                <th>Source</th>
                <th>Added</th>
                {admin && <th />}
              </tr>
            </thead>
            <tbody>
              {d.items.map((u) => (
                <tr key={u.pattern} data-pattern={u.pattern}>
                  <td class="addr">{u.pattern.includes('*') ? u.pattern : <a href={`/ui/mailboxes/${enc(u.pattern)}`}>{u.pattern}</a>}</td>
                  <td>{u.source === 'config' ? 'configuration' : u.added_by}</td>
                  <td>{u.added_at ? <Time ms={u.added_at} /> : <span class="muted">—</span>}</td>
                  {admin && (
                    <td class="buttons">
                      {u.source === 'store' ? (
                        <button type="button" onClick={() => remove(u.pattern)}>
                          Remove
                        </button>
                      ) : (
                        <span class="muted">edit monitor.audit.users</span>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </ShowList>
    </Section>
  );
}

function RecentUsers({ q }: { q: string }) {
  const [cursor, setCursor] = useState<string | null>(null);
  const st = useLoad(() => get<Page<MailboxItem>>(`/api/v1/mailboxes${qs({ q, limit: 50, cursor })}`), [q, cursor]);
  return (
    <Section title="Mailbox users seen logging in (7 days)">
      <ShowList state={st} what="mailboxes" empty={<>No logins{q ? ` of users matching "${q}"` : ''}.</>} next={setCursor}>
        {(p) => (
          <table class="mailboxes">
            <thead>
              <tr>
                <th>User</th>
                <th>Last seen</th>
                <th>From</th>
                <th class="num">Logins</th>
                <th class="num">Failures</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {p.items.map((u) => (
                <tr key={u.user}>
                  <td class="addr">
                    <a href={`/ui/mailboxes/${enc(u.user)}`}>{u.user}</a>
                  </td>
                  <td>
                    <Time ms={u.last_seen} />
                  </td>
                  <td>{u.last_ip ?? '—'}</td>
                  <td class="num">{u.succeeded}</td>
                  <td class="num">{u.failed}</td>
                  <td>{u.audited && <Badge text="audited" />}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </ShowList>
    </Section>
  );
}

export function Mailboxes({ me, q }: { me: Me; q: string }) {
  const [user, setUser] = useState(q);
  function open(e: Event) {
    e.preventDefault();
    const u = user.trim().toLowerCase();
    if (u) navigate(`/mailboxes/${enc(u)}`);
  }
  return (
    <div>
      <h1>Mailbox activity</h1>
      <form class="search" onSubmit={open}>
        <label>
          Mailbox user
          <input name="user" value={user} placeholder="alice@example.org" onInput={(e) => setUser((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <button type="submit">Open</button>
        <button type="button" onClick={() => navigate(`/mailboxes${qs({ q: user.trim() })}`)}>
          Filter the list
        </button>
      </form>
      <AuditedUsers admin={me.role === 'admin'} />
      <RecentUsers q={q} />
    </div>
  );
}

function AuditSwitch({ d, admin, changed }: { d: MailboxActivity; admin: boolean; changed: () => void }) {
  const [flash, setFlash] = useState<Flash>();
  // Only the user's own pattern, added here or with the CLI, can be switched off here; a wildcard or the config's
  // list keeps it audited.
  const own = d.audited_by.includes(d.user);
  const others = d.audited_by.filter((p) => p !== d.user);
  async function toggle(on: boolean) {
    try {
      if (on) await post('/api/v1/audit/users', { pattern: d.user });
      else await del(`/api/v1/audit/users/${enc(d.user)}`);
      setFlash({ ok: true, text: on ? `Audit switched on for ${d.user}: its next login is audited.` : `Audit switched off for ${d.user} from its next login.` });
    } catch (err) {
      setFlash({ ok: false, text: `Not changed: ${why(err)}` });
    }
    changed();
  }
  return (
    <>
      <p class="audit-state">
        {d.audited ? <Badge text="audited" /> : <span class="muted">not audited</span>}
        {d.audited && <span class="muted"> by {d.audited_by.join(', ')}</span>}{' '}
        {admin && !d.audited && (
          <button type="button" onClick={() => toggle(true)}>
            Switch audit on
          </button>
        )}
        {admin && own && (
          <button type="button" onClick={() => toggle(false)}>
            Switch audit off
          </button>
        )}
        {admin && d.audited && !own && others.length > 0 && <span class="muted"> (audited by a wider pattern or the configuration)</span>}
      </p>
      <FlashNote flash={flash} />
    </>
  );
}

export function MailboxPage({ me, user }: { me: Me; user: string }) {
  const st = useLoad(() => get<MailboxActivity>(`/api/v1/mailboxes/${enc(user)}`), [user]);
  return (
    <div>
      <p class="crumbs">
        <a href="/ui/mailboxes">Mailbox activity</a> /
      </p>
      <h1>{user}</h1>
      <Show state={st} what="mailbox activity">
        {(d) => (
          <>
            <AuditSwitch d={d} admin={me.role === 'admin'} changed={st.reload} />
            <div class="grid">
              <Section title="Logins and failures">
                {d.auth.length === 0 ? (
                  <Empty>No login or failure since {d.since.slice(0, 10)}.</Empty>
                ) : (
                  <table class="auth">
                    <thead>
                      <tr>
                        <th>Time</th>
                        <th>Address</th>
                        <th>Protocol</th>
                        <th>Outcome</th>
                      </tr>
                    </thead>
                    <tbody>
                      {d.auth.map((e) => (
                        <tr key={e.id}>
                          <td>
                            <Time ms={e.ts} />
                          </td>
                          <td>{e.ip ?? '—'}</td>
                          <td>{e.protocol ?? '—'}</td>
                          <td>
                            <span class={`badge b-${e.outcome === 'succeeded' ? 'allow' : 'block'}`}>{e.outcome}</span>
                            {e.refused_by && <span class="muted"> by {e.refused_by}</span>}
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                )}
              </Section>
              <Section title="Known login addresses">
                {d.known_logins.length === 0 ? (
                  <Empty>None learned yet.</Empty>
                ) : (
                  <table class="known">
                    <thead>
                      <tr>
                        <th>Address</th>
                        <th>First</th>
                        <th>Last</th>
                        <th class="num">Logins</th>
                      </tr>
                    </thead>
                    <tbody>
                      {d.known_logins.map((k) => (
                        <tr key={k.ip}>
                          <td>{k.ip}</td>
                          <td>
                            <Time ms={k.first_ok} />
                          </td>
                          <td>
                            <Time ms={k.last_ok} />
                          </td>
                          <td class="num">{k.logins}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                )}
              </Section>
              <Section title="Attacks">
                {d.attacks.policies.length === 0 && d.attacks.findings.length === 0 ? (
                  <Empty>No attack seen on this account.</Empty>
                ) : (
                  <table class="attacks">
                    <tbody>
                      {d.attacks.policies.map((p) => (
                        <tr key={p.id}>
                          <td>
                            <Badge text={p.action} />
                          </td>
                          <td>
                            {p.target_kind} <b>{p.target}</b>
                          </td>
                          <td>{p.reason}</td>
                          <td class="muted">{p.state}</td>
                        </tr>
                      ))}
                      {d.attacks.findings.map((f) => (
                        <tr key={`f${f.id}`}>
                          <td>
                            <Time ms={f.ts} />
                          </td>
                          <td class="muted">{f.detector}</td>
                          <td colSpan={2}>{f.reason}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                )}
              </Section>
            </div>
            <Section title="Audit trail">
              {!d.audited && d.audit.sessions.length === 0 ? (
                <Empty>Not audited: switch the audit on to record its sessions.</Empty>
              ) : d.audit.sessions.length === 0 ? (
                <Empty>No audited session yet.</Empty>
              ) : (
                d.audit.sessions.map((s) => (
                  <div key={s.session} class="session">
                    <p>
                      <b>{s.protocol}</b> session <span class="muted">{s.session}</span> from {s.ip ?? '?'}, <Time ms={s.started_at} />
                    </p>
                    <table class="story">
                      <tbody>
                        {s.lines.map((l, i) => (
                          <tr key={i}>
                            <td>
                              <Time ms={l.ts} />
                            </td>
                            <td class="addr">{l.text}</td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  </div>
                ))
              )}
            </Section>
          </>
        )}
      </Show>
    </div>
  );
}
