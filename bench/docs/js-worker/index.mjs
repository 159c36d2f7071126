// References for the document benchmark, in the same workerd as Tessera:
// - CountingDO: the platform floor, a Durable Object (hibernation API) that only
//   counts the messages it receives and answers a text "count?" with the count;
// - YDoc: a `y-partyserver` document (Yjs in memory, nothing persisted per update).
import { DurableObject } from 'cloudflare:workers';
import { routePartykitRequest } from 'partyserver';
import { YServer } from 'y-partyserver';

export class CountingDO extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.count = 0;
  }

  async fetch() {
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1]);
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  webSocketMessage(ws, message) {
    if (typeof message === 'string') ws.send(String(this.count));
    else this.count += 1;
  }

  webSocketClose(ws, code) {
    ws.close(code, 'bye');
  }
}

export class YDoc extends YServer {}

export default {
  async fetch(req, env) {
    const url = new URL(req.url);
    if (url.pathname.startsWith('/count/')) {
      return env.CountingDO.get(env.CountingDO.idFromName(url.pathname)).fetch(req);
    }
    return (await routePartykitRequest(req, env)) ?? new Response('not found', { status: 404 });
  },
};
