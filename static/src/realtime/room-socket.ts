/**
 * One room's WebSocket: a `Socket` that resumes with `?since=` the highest
 * contiguous seq its owner applied, and passes on only frames `isServerFrame`
 * vouches for.
 */
import { isServerFrame, type ClientFrame, type ServerFrame } from './protocol';
import { Socket, wsUrl } from './socket';

export { GONE, type SocketState } from './socket';

export interface RoomSocketHooks {
  /** The seq to resume after, or undefined for a fresh start. */
  since(): number | undefined;
  onFrame(f: ServerFrame): void;
  /** The socket ended for good (removed from the room, room deleted). */
  onGone(code: number): void;
}

export class RoomSocket extends Socket<ServerFrame, ClientFrame> {
  constructor(roomId: string, hooks: RoomSocketHooks) {
    super({
      url() {
        const u = wsUrl(`/api/v1/rooms/${encodeURIComponent(roomId)}/ws`);
        const since = hooks.since();
        if (since !== undefined) u.searchParams.set('since', String(since));
        return u.toString();
      },
      accept: isServerFrame,
      onFrame: (f) => hooks.onFrame(f),
      onGone: (code) => hooks.onGone(code),
    });
  }
}
