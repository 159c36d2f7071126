/** The app's frame: sign-in when signed out, else the rooms list beside the open view. */
import { useEffect } from 'preact/hooks';
import { status, user } from '../api/auth';
import { online } from '../realtime/net';
import { route } from '../state/route';
import { toasts, dismiss } from '../state/toasts';
import { updateReady } from '../state/version';
import { SignIn } from './auth/SignIn';
import { OidcCallback } from './auth/OidcCallback';
import { RoomList, creating } from './rooms/RoomList';
import { NewRoom } from './rooms/NewRoom';
import { QuickSwitcher, openSwitcher } from './rooms/QuickSwitcher';
import { Home } from './rooms/Home';
import { AcceptInvite } from './rooms/AcceptInvite';
import { RoomView } from './chat/RoomView';
import { DocPage } from './docs/DocPage';
import { ApprovalsPage } from './RoomScreens';
import { AccountButton, AccountDialog } from './rooms/AccountButton';
import { InboxButton, InboxDialog } from './rooms/InboxButton';
import { Icon } from './ui/Icon';
import { WifiOff, RotateCw, X } from './icons';
import logo from '../../public/favicon.svg';

export function App() {
  const s = status.value;
  const r = route.value;
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'k' && status.value === 'signed-in') {
        e.preventDefault();
        openSwitcher();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  if (r.name === 'oidc') return <OidcCallback />;
  if (s === 'starting') return <p class="boot" role="status">Loading Tessera…</p>;
  if (s === 'signed-out' || !user.value) return <><Banners /><SignIn /><Toasts /></>;
  return (
    <div class={`shell ${r.name === 'room' || r.name === 'doc' || r.name === 'approvals' ? 'in-room' : 'at-home'}`}>
      <a class="skip" href="#main">Skip to content</a>
      <Banners />
      <aside class="side" aria-label="Rooms">
        <header class="side-head">
          <span class="brand"><img src={logo} alt="" width="24" height="24" />Tessera</span>
          <span class="side-tools"><InboxButton /><AccountButton /></span>
        </header>
        <RoomList />
      </aside>
      <main id="main" class="main" tabIndex={-1}>
        {r.name === 'room' ? <RoomView key={r.id} roomId={r.id} tab={r.tab ?? null} message={r.message} />
          : r.name === 'doc' ? <DocPage roomId={r.id} doc={r.doc} />
          : r.name === 'approvals' ? <ApprovalsPage request={r.request} />
          : r.name === 'invite' ? <AcceptInvite code={r.code} />
          : r.name === 'missing' ? <section class="empty"><h1>Nothing here</h1><p>This address does not lead to a room.</p></section>
          : <Home />}
      </main>
      <QuickSwitcher />
      {creating.value && <NewRoom onClose={() => { creating.value = false; }} />}
      <AccountDialog />
      <InboxDialog />
      <Toasts />
    </div>
  );
}

function Banners() {
  return (
    <div class="banners">
      {!online.value && (
        <p class="banner offline" role="status">
          <Icon node={WifiOff} /> You are offline. What you send is kept on this device and goes out when the connection returns.
        </p>
      )}
      {updateReady.value && (
        <p class="banner update" role="status">
          A new version of Tessera is available.
          <button type="button" class="btn small" onClick={() => location.reload()}><Icon node={RotateCw} /> Reload</button>
        </p>
      )}
    </div>
  );
}

function Toasts() {
  return (
    <div class="toasts" role="region" aria-label="Notifications">
      <div aria-live="polite">
        {toasts.value.map((t) => (
          <div key={t.id} class={`toast ${t.kind}`} role={t.kind === 'error' ? 'alert' : 'status'}>
            <span>{t.text}</span>
            <button type="button" class="icon-btn" aria-label="Dismiss" onClick={() => dismiss(t.id)}><Icon node={X} size={16} /></button>
          </div>
        ))}
      </div>
    </div>
  );
}
