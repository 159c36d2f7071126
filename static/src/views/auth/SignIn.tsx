/** Sign in or create an account (and the OIDC provider's button when one is configured). */
import { useSignal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import { register, signIn } from '../../api/auth';
import { describe } from '../../api/errors';
import { begin, config } from '../../api/oidc';
import type { AuthConfig } from '../../api/types';
import { route } from '../../state/route';
import logo from '../../../public/favicon.svg';

export function SignIn() {
  const mode = useSignal<'in' | 'up'>('in');
  const busy = useSignal(false);
  const error = useSignal<string | null>(null);
  const cfg = useSignal<AuthConfig | null>(null);
  useEffect(() => { config().then((c) => { cfg.value = c; }).catch(() => undefined); }, []);
  const invited = route.value.name === 'invite';

  const submit = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const email = String(f.get('email') ?? '').trim();
    const password = String(f.get('password') ?? '');
    busy.value = true;
    error.value = null;
    try {
      if (mode.value === 'up') await register(email, password, String(f.get('name') ?? '').trim());
      else await signIn(email, password);
    } catch (err) {
      error.value = describe(err);
    } finally {
      busy.value = false;
    }
  };
  const up = mode.value === 'up';
  const oidc = cfg.value?.oidc;
  return (
    <main class="auth" id="main">
      <div class="auth-card">
        <h1 class="brand big"><img src={logo} alt="" width="36" height="36" />Tessera</h1>
        <p class="muted">{invited ? 'Sign in or create an account to join the room you were invited to.' : 'Chat, documents and files with your team.'}</p>
        <div class="tabs" role="tablist" aria-label="Account">
          <button type="button" role="tab" id="tab-in" aria-controls="auth-panel" aria-selected={!up} class="tab" onClick={() => { mode.value = 'in'; error.value = null; }}>Sign in</button>
          <button type="button" role="tab" id="tab-up" aria-controls="auth-panel" aria-selected={up} class="tab" onClick={() => { mode.value = 'up'; error.value = null; }}>Create account</button>
        </div>
        <div role="tabpanel" id="auth-panel" aria-labelledby={up ? 'tab-up' : 'tab-in'}>
        {cfg.value?.password !== false && (
          <form class="form" onSubmit={submit} aria-label={up ? 'Create account' : 'Sign in'}>
            {up && (
              <label>Display name
                <input name="name" autocomplete="name" required maxLength={64} />
              </label>
            )}
            <label>Email
              <input name="email" type="email" autocomplete="email" required />
            </label>
            <label>Password
              <input name="password" type="password" autocomplete={up ? 'new-password' : 'current-password'} required minLength={up ? 10 : 1} maxLength={256} />
            </label>
            {up && <p class="hint">At least 10 characters.</p>}
            {error.value && <p class="error" role="alert">{error.value}</p>}
            <button class="btn primary" type="submit" disabled={busy.value}>{busy.value ? 'Please wait…' : up ? 'Create account' : 'Sign in'}</button>
          </form>
        )}
        </div>
        {oidc && (
          <button type="button" class="btn wide" onClick={() => void begin(oidc, location.pathname).catch((e) => { error.value = describe(e); })}>
            Sign in with {new URL(oidc.issuer).host}
          </button>
        )}
      </div>
    </main>
  );
}
