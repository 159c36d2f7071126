// The peer of the document benchmark: Tessera's own editor (CodeMirror 6 and
// y-codemirror.next, as the app sets it up) on a y-websocket-server document,
// with no offline copy. `?ws=<server>&doc=<name>&name=<person>`.
import * as Y from 'yjs';
import { WebsocketProvider } from 'y-websocket';
import { createEditor } from '../../static/src/editor/setup';
import { TEXT_ROOT, type DocSession } from '../../static/src/realtime/doc-session';

const q = new URLSearchParams(location.search);
const doc = new Y.Doc();
const provider = new WebsocketProvider(q.get('ws') ?? '', q.get('doc') ?? '', doc);
provider.awareness.setLocalStateField('user', { name: q.get('name') ?? 'peer' });
provider.once('sync', () => {
  const host = document.getElementById('host');
  if (!host) throw new Error('no #host');
  // Only what the editor reads of a session.
  const session = { name: q.get('doc') ?? '', text: doc.getText(TEXT_ROOT), awareness: provider.awareness } as unknown as DocSession;
  createEditor(host.attachShadow({ mode: 'open' }), session, false);
});
