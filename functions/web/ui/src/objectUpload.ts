// A one-object upload to the bucket (docs/imports.md "Upload flow"): the presigned POST of a small
// file, or the presigned part PUTs of a multipart one (each part exactly its signed size), CONCURRENCY
// parts at once. Every request is retried on network errors and 5xx (retry.ts): one dropped connection
// during a 2 GB upload costs one part, not the upload. A part refused with a 403 (its URL expired, after
// STAGE1_UPLOAD_URL_EXPIRES_SECONDS) is re-signed once: `/resume` lists the parts the store has and hands
// out fresh URLs for the missing ones.
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

/** What `POST /api/uploads/{id}/resume` answers for a multipart upload (the fields read here). */
export type Resumed = {
  upload_id: string;
  parts_missing?: number[] | null;
  parts?: { part_number: number; url: string; size?: number | null }[] | null;
};

/** Why a 403 from the bucket: a presigned URL past its `expires_at` (or, on AWS, signed by a role
 * session that ended). Shown when no re-signing helped (a POST cannot be re-signed; a multipart
 * upload's `/resume` failed, or its fresh URLs were refused too). */
function refused(up: Created, e: Failed): string {
  if (e.status !== 403) return "";
  const past = up.expires_at && Date.parse(up.expires_at) < Date.now();
  return `: the upload's presigned URLs have ${past ? `expired (at ${up.expires_at})` : "most likely expired"}` +
    " and cannot be renewed for this upload: start the upload again";
}

/** Send `file` as `up` says; returns the parts' ETags for `complete` (undefined for a POST, after a
 * resume, or when the bucket's CORS does not expose ETag: then the server lists the parts itself).
 * `resume`: re-sign a multipart upload's missing parts (`POST /api/uploads/{id}/resume`), called at most
 * once, on the first part refused with a 403. */
export async function toBucket(file: Blob, up: Created, onProgress: (sent: number) => void,
  o: RetryOptions & { send?: Send; concurrency?: number; resume?: () => Promise<Resumed> } = {}): Promise<Part[] | undefined> {
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
  type Slice = (typeof slices)[number];
  const sendParts = (todo: Slice[], base: number) => sendAll(todo, {
    ...o,
    base,
    send: async (s, onb) => (await send("PUT", urls.get(s.part)!, file.slice(s.start, s.end), onb)).getResponseHeader("ETag"),
    onBytes: onProgress,
    failure: (s, e) => Object.assign(new Error(`part ${s.part} of ${slices.length}: ${e.message}${afterAttempts(e)}${refused(up, e)}`),
      { status: e.status }),
  });
  let etags: (string | null)[];
  try {
    etags = await sendParts(slices, 0);
  } catch (e) {
    if ((e as { status?: number }).status !== 403 || !o.resume) throw e;
    const todo = await resumeParts(slices, urls, o.resume).catch(() => null);
    if (!todo) throw e; // resume failed: the first error, which says to start again
    const have = file.size - todo.reduce((a, s) => a + s.size, 0);
    onProgress(have);
    await sendParts(todo, have);
    // The ETags of the parts sent before the resume are the store's: `complete` without parts lists them.
    return undefined;
  }
  if (etags.some((t) => !t)) return undefined;
  return slices.map((s, i) => ({ part_number: s.part, etag: etags[i]! }));
}

/** Ask for fresh URLs of the parts the store does not have (`urls` takes them); the slices to send
 * again. Refused (null) when the answer does not hand out every missing part at this file's cut. */
async function resumeParts<S extends { part: number; size: number }>(slices: S[], urls: Map<number, string>,
  resume: () => Promise<Resumed>): Promise<S[] | null> {
  const now = await resume();
  const missing = now.parts_missing ?? [];
  const fresh = new Map((now.parts ?? []).map((p) => [p.part_number, p]));
  const todo = slices.filter((s) => missing.includes(s.part));
  if (todo.length !== missing.length || todo.some((s) => fresh.get(s.part)?.size !== s.size)) return null;
  for (const s of todo) urls.set(s.part, fresh.get(s.part)!.url);
  return todo;
}
