/** A lucide icon (an IconNode array) as inline SVG; decorative, so hidden from assistive tech. */
import type { IconNode } from 'lucide';

export function Icon({ node, size = 18 }: { node: IconNode; size?: number }) {
  return (
    <svg class="icon" width={size} height={size} viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false">
      {node.map(([tag, attrs]) => {
        const Tag = tag as 'path';
        return <Tag {...(attrs as Record<string, string>)} />;
      })}
    </svg>
  );
}
