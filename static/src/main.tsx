/**
 * Boot: resume the session from the refresh cookie, render the app, and watch
 * for a newer deploy. Module order matters only here; every store is a plain
 * module that views read (views → state → realtime → api).
 */
import { options, render } from 'preact';
import { start } from './api/auth';
import { App } from './views/App';
import { watchDeploys } from './state/version';
import { warmUp } from './lib/format';
import './styles/app.css';
import './styles/notify-search.css';

// One render per frame however many frames arrive: a busy room re-renders at
// most at the display rate (a hidden tab, where frames stop, renders at once).
options.debounceRendering = (cb) => (document.hidden ? setTimeout(cb) : requestAnimationFrame(cb));

const root = document.getElementById('app')!;
root.textContent = '';
render(<App />, root);
void start().then(() => performance.mark('tessera:session'));
warmUp();
watchDeploys(import.meta.url);
