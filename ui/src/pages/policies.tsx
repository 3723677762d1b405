// Live policies: the list (active, expired or all) with their evidence; admins add and lift.
import { useState } from 'preact/hooks';
import { enc, get, post, qs, type Me } from '../api.ts';
import { Badge, Time, Val, useLoad } from '../components.tsx';
import { FlashNote, ShowList, why, type Flash } from '../list.tsx';
import type { Page, PolicyRow } from '../types.ts';
import { DetectorsPanel } from './detectors.tsx';

const KINDS = ['ip', 'cidr', 'helo', 'sender', 'domain', 'recipient', 'cluster', 'user'];
const ACTIONS = ['block', 'defer', 'throttle', 'tarpit', 'redirect', 'quarantine', 'allow', 'protect'];

function AddForm({ done }: { done: (text: string, ok: boolean) => void }) {
  const [f, setF] = useState({ target_kind: 'ip', target: '', action: 'block', ttl_h: '', reason: '', params: '' });
  const set = (k: keyof typeof f) => (e: Event) => setF({ ...f, [k]: (e.currentTarget as HTMLInputElement).value });
  async function submit(e: Event) {
    e.preventDefault();
    let params: unknown;
    if (f.params.trim()) {
      try {
        params = JSON.parse(f.params);
      } catch {
        return done('Parameters must be a JSON object, such as {"rate": 10, "window_s": 60}.', false);
      }
    }
    const ttl = f.ttl_h.trim() ? Math.round(Number(f.ttl_h) * 3600) : null;
    if (ttl !== null && !(ttl > 0)) return done('Hours must be a positive number, or empty for no expiry.', false);
    try {
      const p = await post<PolicyRow>('/api/v1/policies', {
        target_kind: f.target_kind,
        target: f.target.trim(),
        action: f.action,
        ttl_s: ttl,
        ...(f.reason.trim() && { reason: f.reason.trim() }),
        ...(params !== undefined && { params }),
      });
      setF({ ...f, target: '', reason: '', params: '' });
      done(`Added ${p.id}: ${p.action} ${p.target_kind} ${p.target}.`, true);
    } catch (err) {
      done(`Not added: ${why(err)}`, false);
    }
  }
  return (
    <form class="search add-policy" onSubmit={submit}>
      <label>
        Kind
        <select name="target_kind" value={f.target_kind} onChange={set('target_kind')}>
          {KINDS.map((k) => (
            <option key={k}>{k}</option>
          ))}
        </select>
      </label>
      <label>
        Target
        <input name="target" required value={f.target} placeholder="192.0.2.7, *@spam.example, …" onInput={set('target')} />
      </label>
      <label>
        Action
        <select name="action" value={f.action} onChange={set('action')}>
          {ACTIONS.map((k) => (
            <option key={k}>{k}</option>
          ))}
        </select>
      </label>
      <label>
        Hours
        <input name="ttl_h" size={5} value={f.ttl_h} placeholder="never" onInput={set('ttl_h')} />
      </label>
      <label>
        Reason
        <input name="reason" value={f.reason} onInput={set('reason')} />
      </label>
      <label>
        Parameters (JSON)
        <input name="params" value={f.params} placeholder='{"rate": 10, "window_s": 60}' onInput={set('params')} />
      </label>
      <button type="submit">Add policy</button>
    </form>
  );
}

export function Policies({ me }: { me: Me }) {
  const [state, setState] = useState('active');
  const [cursor, setCursor] = useState<string | null>(null);
  const [flash, setFlash] = useState<Flash>();
  const admin = me.role === 'admin';
  const st = useLoad(() => get<Page<PolicyRow>>(`/api/v1/policies${qs({ state, limit: 100, cursor })}`), [state, cursor]);

  async function lift(p: PolicyRow) {
    try {
      await post(`/api/v1/policies/${enc(p.id)}/lift`);
      setFlash({ ok: true, text: `Lifted ${p.id} (${p.action} ${p.target_kind} ${p.target}).` });
    } catch (err) {
      setFlash({ ok: false, text: `Not lifted: ${why(err)}` });
    }
    st.reload();
  }

  return (
    <div>
      <h1>Policies</h1>
      {admin && (
        <AddForm
          done={(text, ok) => {
            setFlash({ ok, text });
            if (ok) st.reload();
          }}
        />
      )}
      <FlashNote flash={flash} />
      <p class="tabs">
        {['active', 'expired', 'all'].map((s) => (
          <button key={s} type="button" class={s === state ? 'here' : ''} onClick={() => (setCursor(null), setState(s))}>
            {s}
          </button>
        ))}
      </p>
      <ShowList state={st} what="policies" empty={<>No {state === 'all' ? '' : state} policies.</>} next={setCursor}>
        {(p) => (
          <table class="policies">
            <thead>
              <tr>
                <th>Id</th>
                <th>Action</th>
                <th>Target</th>
                <th>Source</th>
                <th>Reason and evidence</th>
                <th>Created</th>
                <th>Expires</th>
                {admin && <th />}
              </tr>
            </thead>
            <tbody>
              {p.items.map((r) => (
                <tr key={r.id} data-id={r.id}>
                  <td class="muted">{r.id}</td>
                  <td>
                    <Badge text={r.action} />
                    {Object.keys(r.params).length > 0 && (
                      <div class="muted">
                        <Val v={r.params} />
                      </div>
                    )}
                  </td>
                  <td>
                    {r.target_kind} <b>{r.target}</b>
                  </td>
                  <td>{r.source}</td>
                  <td>
                    {r.reason}
                    {Object.keys(r.evidence).length > 0 && (
                      <div class="muted">
                        <Val v={r.evidence} />
                      </div>
                    )}
                  </td>
                  <td>
                    <Time ms={r.created_at} />
                  </td>
                  <td>{r.pinned ? 'pinned' : r.expires_at ? <Time ms={r.expires_at} /> : 'never'}</td>
                  {admin && (
                    <td class="buttons">
                      {r.state === 'active' && (
                        <button type="button" onClick={() => lift(r)}>
                          Lift
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </ShowList>
      <DetectorsPanel admin={admin} />
    </div>
  );
}
