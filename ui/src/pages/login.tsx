// Signing in with an account's name and password (POST /api/v1/session).
import { useState } from 'preact/hooks';
import { ApiError, post, type Me } from '../api.ts';

export function Login({ onSignedIn, notice }: { onSignedIn: (me: Me) => void; notice?: string }) {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      onSignedIn(await post<Me>('/api/v1/session', { name, password }));
    } catch (err) {
      if (err instanceof ApiError && err.unavailable) setError('This server has no accounts yet: signing in is not available.');
      else setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="login">
      <h1>Postern center</h1>
      {notice && <p class="note">{notice}</p>}
      <form onSubmit={submit}>
        <label>
          Name
          <input name="name" autocomplete="username" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input name="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        {error && (
          <p class="note error" role="alert">
            Not signed in: {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}
