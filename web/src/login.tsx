import { useState } from 'preact/hooks';
import { type Session, logIn, register } from './session.js';

export function LoginScreen({ onSession }: { onSession: (session: Session) => void }) {
  const [mode, setMode] = useState<'login' | 'register'>('login');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const username = String(form.get('username') ?? '').trim();
    const password = String(form.get('password') ?? '');
    const invite = String(form.get('invite') ?? '').trim() || undefined;
    setBusy(true);
    setError(undefined);
    try {
      onSession(mode === 'login' ? await logIn(username, password) : await register(username, password, invite));
    } catch (failure) {
      setError((failure as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <form onSubmit={submit} aria-label={mode === 'login' ? 'Log in' : 'Create an account'}>
        <h1>chatd</h1>
        <label>
          Username <input name="username" autocomplete="username" required autofocus />
        </label>
        <label>
          Password <input name="password" type="password" autocomplete={mode === 'login' ? 'current-password' : 'new-password'} required />
        </label>
        {mode === 'register' && (
          <label>
            Invite code (if the server asks for one) <input name="invite" autocomplete="off" />
          </label>
        )}
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit" disabled={busy}>
          {mode === 'login' ? 'Log in' : 'Create account'}
        </button>
        <button type="button" class="link" onClick={() => {
            // The other form's error does not concern this one.
            setError(undefined);
            setMode(mode === 'login' ? 'register' : 'login');
          }}>
          {mode === 'login' ? 'No account yet? Create one' : 'I have an account: log in'}
        </button>
      </form>
    </main>
  );
}
