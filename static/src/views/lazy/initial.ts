/**
 * Imported first by every lazy chunk, so that each reaches all of the first
 * page's code. esbuild puts a module in a chunk by the set of entries that
 * reach it, and lazy chunks reaching different parts of the first page's
 * code split it into many small chunks: fifteen, each a request of its own
 * before the app could start (three waves of round trips over HTTP/1.1's six
 * connections on a slow phone). Reaching all of it makes it one chunk. The
 * modules are already loaded when a lazy chunk runs: this costs nothing.
 */
import '../App';
