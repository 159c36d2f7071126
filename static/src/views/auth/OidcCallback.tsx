/** Where the OIDC provider sends the browser back: finishes the sign-in, then goes where it started. */
import { useSignal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import { describe } from '../../api/errors';
import { complete } from '../../api/oidc';
import { navigate } from '../../state/route';

export function OidcCallback() {
  const error = useSignal<string | null>(null);
  useEffect(() => {
    complete(new URLSearchParams(location.search))
      .then(({ back }) => navigate(back, true))
      .catch((e) => { error.value = describe(e); });
  }, []);
  return (
    <main class="auth" id="main">
      <div class="auth-card">
        {error.value ? (
          <>
            <h1>Sign-in failed</h1>
            <p class="error" role="alert">{error.value}</p>
            <a class="btn" href="/">Back to sign-in</a>
          </>
        ) : <p role="status">Signing you in…</p>}
      </div>
    </main>
  );
}
