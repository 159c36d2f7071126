// Unmodified yjs + y-websocket clients for Tessera's document sockets.
import * as Y from 'yjs';
import { WebsocketProvider } from 'y-websocket';
import WebSocket from 'ws';
import { randomIp } from './harness.mjs';

/** `ws` with a per-client address, so the API rate limit sees separate clients. */
class ClientSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { headers: { 'cf-connecting-ip': randomIp() } });
  }
}

/** Connects a Y.Doc the way any Yjs app does: `origin + /api/v1/rooms/{room}/docs`. */
export function open(server, room, name, token, ydoc = new Y.Doc()) {
  const provider = new WebsocketProvider(`${server.url.replace('http', 'ws')}/api/v1/rooms/${room}/docs`, name, ydoc, {
    WebSocketPolyfill: ClientSocket,
    params: { token },
    disableBc: true,
    maxBackoffTime: 500,
  });
  return { provider, ydoc, text: ydoc.getText('t') };
}

export function synced(provider, timeoutMs = 10_000) {
  if (provider.synced) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('not synced')), timeoutMs);
    const on = (isSynced) => {
      if (isSynced) {
        clearTimeout(timer);
        provider.off('sync', on);
        resolve();
      }
    };
    provider.on('sync', on);
  });
}

/** Waits until `pred()` holds, polling. */
export async function until(pred, timeoutMs = 10_000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export { Y };
