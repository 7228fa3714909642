// A one-object upload to the bucket (docs/imports.md "Upload flow"): the presigned POST of a small
// file, or the presigned part PUTs of a multipart one (each part exactly its signed size), CONCURRENCY
// parts at once. Every request is retried on network errors and 5xx (retry.ts): one dropped connection
// during a 2 GB upload costs one part, not the upload.
import type { Schemas } from "./api/client";
import { send as xhrSend } from "./bucket";
import { afterAttempts, retrying, sendAll, type Failed, type RetryOptions } from "./retry";
import { partSlices } from "./shape";

type Created = Schemas["UploadCreated"];
// CompleteRequest: the spec documents this body as raw JSON, so it is typed here.
export type Part = { part_number: number; etag: string };
/** One request to the bucket (bucket.ts `send`); only the response's ETag header is read. */
export type Send = (method: string, url: string, body: XMLHttpRequestBodyInit, onBytes: (n: number) => void)
  => Promise<{ getResponseHeader(name: string): string | null }>;

/** Why a 403 from the bucket: a presigned URL past its `expires_at` (or, on AWS, signed by a role
 * session that ended). The server re-signs only chunked uploads (`/resume`), not multipart parts. */
function refused(up: Created, e: Failed): string {
  if (e.status !== 403) return "";
  const past = up.expires_at && Date.parse(up.expires_at) < Date.now();
  return `: the upload's presigned URLs have ${past ? `expired (at ${up.expires_at})` : "most likely expired"}` +
    " and cannot be renewed for this upload: start the upload again";
}

/** Send `file` as `up` says; returns the parts' ETags for `complete` (undefined for a POST, or when
 * the bucket's CORS does not expose ETag: then the server lists the parts itself). */
export async function toBucket(file: Blob, up: Created, onProgress: (sent: number) => void,
  o: RetryOptions & { send?: Send; concurrency?: number } = {}): Promise<Part[] | undefined> {
  const send = o.send ?? xhrSend;
  if (!up.multipart) {
    const form = new FormData();
    for (const [k, v] of Object.entries(up.fields ?? {})) form.append(k, v);
    form.append("file", file);
    try {
      // Each attempt re-sends the whole form (the file is a Blob: nothing is held in memory).
      await retrying((onb) => send(up.method || "POST", up.url, form, onb), (n) => onProgress(Math.min(n, file.size)), o);
    } catch (e) {
      const f = e as Failed;
      throw Object.assign(new Error(`${f.message}${afterAttempts(f)}${refused(up, f)}`), { status: f.status });
    }
    onProgress(file.size);
    return undefined;
  }
  const urls = new Map((up.parts ?? []).map((p) => [p.part_number, p.url]));
  const slices = partSlices(file.size, up.part_size ?? file.size, up.parts ?? [])
    .map((s) => ({ ...s, size: s.end - s.start }));
  const etags = await sendAll(slices, {
    ...o,
    send: async (s, onb) => (await send("PUT", urls.get(s.part)!, file.slice(s.start, s.end), onb)).getResponseHeader("ETag"),
    onBytes: onProgress,
    failure: (s, e) => Object.assign(new Error(`part ${s.part} of ${slices.length}: ${e.message}${afterAttempts(e)}${refused(up, e)}`),
      { status: e.status }),
  });
  if (etags.some((t) => !t)) return undefined;
  return slices.map((s, i) => ({ part_number: s.part, etag: etags[i]! }));
}
