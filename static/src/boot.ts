/** The script index.html loads first, async (scripts/build-web.mjs): see api/early.ts. */
import { begin } from './api/early';

begin();
