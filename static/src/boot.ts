/** The script inline in index.html (scripts/build-web.mjs): see api/early.ts. */
import { begin } from './api/early';

begin();
