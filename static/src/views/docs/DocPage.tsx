/** `/rooms/:id/docs/:doc`: the document editor, from its lazy chunk. */
import { useEffect } from 'preact/hooks';
import { editor } from '../lazy';

export function DocPage({ roomId, doc }: { roomId: string; doc: string }) {
  useEffect(() => { void editor.load(); }, []);
  const E = editor.value.value;
  if (!E) return <p class="boot" role="status">Opening {doc}…</p>;
  return <E.DocView key={`${roomId}/${doc}`} roomId={roomId} doc={doc} />;
}
