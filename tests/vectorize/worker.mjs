// A test double of a Vectorize index for wrangler dev, which simulates none:
// bound to Tessera as the service VECTORIZE, it has the index's three
// methods Tessera calls and forwards each, as JSON, to the test that started
// it (INDEX_URL), which keeps the vectors, answers, and sees every call.
import { WorkerEntrypoint } from 'cloudflare:workers';

async function forward(env, method, args) {
  const r = await fetch(`${env.INDEX_URL}/${method}`, { method: 'POST', body: JSON.stringify(args) });
  if (!r.ok) throw new Error(await r.text());
  return r.json();
}

export default class Index extends WorkerEntrypoint {
  query(vector, options) {
    return forward(this.env, 'query', { vector: Array.from(vector), options });
  }

  upsert(vectors) {
    return forward(this.env, 'upsert', { vectors: vectors.map((v) => ({ ...v, values: Array.from(v.values) })) });
  }

  deleteByIds(ids) {
    return forward(this.env, 'deleteByIds', { ids });
  }
}
