// A chunked upload from the browser (docs/imports.md "Chunked uploads", docs/web.md): the CSV is cut
// at row boundaries (chunks.ts), the chunk sizes declared up front, each chunk PUT to its presigned
// URL (its length is signed), CONCURRENCY at once, each retried on network errors and 5xx. The server
// imports each chunk as it lands. The upload id is kept in localStorage so that picking the same file
// again (same name, size, lastModified) after a crash or a closed tab sends only the missing chunks.
import { api, ApiError, ok, type Schemas } from "./api/client";
import { send } from "./bucket";
import { afterAttempts, sendAll } from "./retry";
import { chunkBlob, chunkSizeFor, loadSaved, plan, sameLayout, savedKey, type Plan, type Saved } from "./chunks";

type Chunk = Schemas["UploadChunk"];

export type Started = {
  uploadId: string;
  jobId: string;
  /** Bytes that go up in all (each chunk repeats the header), and those already on the server. */
  total: number;
  have: number;
  chunkCount: number;
  /** "resuming: N of M chunks already on the server", or why an earlier upload was not resumed. */
  note: string | null;
  key: string;
};

export type Events = {
  onStarted: (s: Started) => void;
  onBytes: (sent: number) => void;
  onChunkSent: (index: number) => void;
  /** Why to send no more chunks (the import job ended: a bad chunk failed it, or it was cancelled), or null. */
  stopReason?: () => string | null;
};

/** Send the handed-out chunks, CONCURRENCY at once, each retried (retry.ts); the first chunk that
 * fails stops the others taking new chunks and is thrown (the chunks sent stay on the server for a resume). */
export async function sendChunks(file: Blob, p: Plan, urls: Chunk[], base: number, ev: Events): Promise<void> {
  for (const u of urls) {
    if (u.index < 1 || u.index > p.sizes.length || u.size !== p.sizes[u.index - 1])
      throw new Error(`the server's chunk ${u.index} (${u.size} bytes) is not this file's cut`);
  }
  await sendAll(urls, {
    base,
    send: (u, onBytes) => send("PUT", u.url, chunkBlob(file, p, u.index), onBytes),
    onBytes: ev.onBytes,
    onSent: (u) => ev.onChunkSent(u.index),
    stopReason: ev.stopReason,
    failure: (u, e) => Object.assign(new Error(`chunk ${u.index} of ${p.sizes.length}: ${e.message}${afterAttempts(e)}`), { status: e.status }),
  });
}

/** Send the handed-out URLs; while more chunks are missing than were handed out (1,000 URLs per
 * answer), ask the server for the next ones. A 403 from the bucket is most likely URLs that expired
 * (STAGE1_UPLOAD_URL_EXPIRES_SECONDS, 1 h, passed during a long upload): fresh ones are asked for,
 * at most 3 times in a row without a chunk getting through. */
async function sendRounds(file: Blob, p: Plan, uploadId: string, urls: Chunk[], missing: number, base: number, ev: Events): Promise<void> {
  let sent = base;
  let refused = 0;
  let through = 0;
  const counting: Events = { ...ev, onChunkSent: (i) => { through++; ev.onChunkSent(i); } };
  while (urls.length) {
    through = 0;
    try {
      await sendChunks(file, p, urls, sent, counting);
      if (urls.length >= missing) break;
      refused = 0;
    } catch (e) {
      refused = through ? 1 : refused + 1;
      if ((e as { status?: number }).status !== 403 || refused > 3) throw e;
    }
    const now = await ok(api.POST("/api/uploads/{upload_id}/resume", { params: { path: { upload_id: uploadId } } }));
    urls = now.urls ?? [];
    missing = now.missing?.length ?? 0;
    sent = p.sizes.reduce((a, b) => a + b, 0) - (now.missing ?? []).reduce((a, i) => a + p.sizes[i - 1], 0);
  }
}

/** `sendRounds`, then `complete`: the nudge that lists the bucket and imports any chunk whose storage
 * event was lost or still lags (the status the page polls afterwards only reads). Cut off, the chunks
 * that landed stay for a resume: the nudge (best effort) records them at once, so the status read
 * when the file is picked again counts them. */
async function sendMissing(file: Blob, p: Plan, uploadId: string, urls: Chunk[], missing: number, base: number, ev: Events): Promise<void> {
  let landed = 0;
  const nudge = () => api.POST("/api/uploads/{upload_id}/complete", { params: { path: { upload_id: uploadId } } });
  try {
    await sendRounds(file, p, uploadId, urls, missing, base, { ...ev, onChunkSent: (i) => { landed++; ev.onChunkSent(i); } });
  } catch (e) {
    if (landed) await nudge().catch(() => undefined);
    throw e;
  }
  await ok(nudge());
}

function store(): Storage | null {
  try { return window.localStorage; } catch { return null; } // storage disabled: no resume, uploads still work
}

/** The kept record of an unfinished chunked upload of this file to this target, if any. */
export function savedUpload(file: File, dataset: string, kind: string): Saved | null {
  const st = store();
  return st ? loadSaved(st, savedKey(file, dataset, kind)) : null;
}

export function forget(key: string): void {
  store()?.removeItem(key);
}

/** A chunked upload of `file` into the dataset (or the resume of an earlier one). Returns false when
 * the server did not make it chunked (an older server ignores `chunks`): the caller uploads it as one object. */
export async function chunkedUpload(file: File, dataset: string, kind: "ohlcv" | "indicators", chunkBytes: number, ev: Events): Promise<boolean> {
  const p = await plan(file, chunkSizeFor(file.size, chunkBytes));
  const total = p.sizes.reduce((a, b) => a + b, 0);
  const key = savedKey(file, dataset, kind);
  const saved = loadSaved(store() ?? { getItem: () => null }, key);
  let note: string | null = null;
  if (saved && !sameLayout(saved, p)) {
    note = "an earlier upload of this file was cut differently: starting again";
    forget(key);
  } else if (saved) {
    try {
      const now = await ok(api.POST("/api/uploads/{upload_id}/resume", { params: { path: { upload_id: saved.upload_id } } }));
      const missing = now.missing ?? [];
      const have = total - missing.reduce((a, i) => a + p.sizes[i - 1], 0);
      ev.onStarted({ uploadId: now.upload_id, jobId: now.job_id, total, have, chunkCount: p.sizes.length, key,
        note: `resuming: ${now.chunk_count - missing.length} of ${now.chunk_count} chunks already on the server` });
      await sendMissing(file, p, now.upload_id, now.urls ?? [], missing.length, have, ev);
      return true;
    } catch (e) {
      // 404: unknown or expired and cleaned up; 409: its job ended (expired, failed, cancelled, done); 400: not chunked
      if (!(e instanceof ApiError) || ![400, 404, 409].includes(e.status)) throw e;
      note = `the earlier upload of this file cannot be resumed (${e.message}): starting again`;
      forget(key);
    }
  }
  const created = await ok(api.POST("/api/datasets/{dataset_id}/uploads", {
    params: { path: { dataset_id: dataset } },
    body: { filename: file.name, size: total, kind, content_type: "text/csv", chunks: p.sizes },
  }));
  if (!created.chunked) {
    await api.POST("/api/jobs/{job_id}/cancel", { params: { path: { job_id: created.job_id } } });
    return false;
  }
  const entry: Saved = { upload_id: created.upload_id, job_id: created.job_id, name: file.name, size: file.size,
    lastModified: file.lastModified, dataset, kind, sizes: p.sizes };
  try { store()?.setItem(key, JSON.stringify(entry)); } catch { /* quota: this upload just cannot be resumed */ }
  ev.onStarted({ uploadId: created.upload_id, jobId: created.job_id, total, have: 0, chunkCount: p.sizes.length, key, note });
  await sendMissing(file, p, created.upload_id, created.chunks ?? [], p.sizes.length, 0, ev);
  return true;
}
