// The floor for moving bytes through local workerd into R2 and back: a
// JavaScript Worker that streams request bodies straight into R2 (whole
// objects, or multipart parts the client cuts) and streams objects back. No
// authentication, no metadata, no hashing: only the platform's cost.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const [, kind, key, uploadId, part] = url.pathname.split('/');
    if (kind === 'whole' && request.method === 'PUT') {
      await env.FILES.put(key, request.body);
      return new Response(null, { status: 204 });
    }
    if (kind === 'whole' && request.method === 'GET') {
      const object = await env.FILES.get(key);
      return object ? new Response(object.body) : new Response('missing', { status: 404 });
    }
    if (kind === 'mpu' && request.method === 'POST' && !uploadId) {
      const mpu = await env.FILES.createMultipartUpload(key);
      return Response.json({ uploadId: mpu.uploadId });
    }
    if (kind === 'mpu' && request.method === 'PUT') {
      const mpu = env.FILES.resumeMultipartUpload(key, uploadId);
      return Response.json(await mpu.uploadPart(Number(part), request.body));
    }
    if (kind === 'mpu' && request.method === 'POST') {
      const mpu = env.FILES.resumeMultipartUpload(key, uploadId);
      await mpu.complete(await request.json());
      return new Response(null, { status: 204 });
    }
    return new Response('no route', { status: 404 });
  },
};
