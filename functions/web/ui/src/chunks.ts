// Cutting a CSV into chunks at row boundaries, in the browser, without reading the file into memory
// (docs/imports.md "Chunked uploads"; the Python client's stage1_client/upload_chunks.py is the model).
// Only a small window around each cut is read (Blob.slice + arrayBuffer) to find the next newline; a
// chunk's body is a Blob of [header, rows slice]: slices of the File, never a copy of its bytes.
// Pure functions over a Blob, unit-tested in chunks.test.ts.

export const MiB = 1024 * 1024;
/** Per chunk: ~600k OHLCV rows, a few seconds of import each (as the Python client). */
export const CHUNK_BYTES = 32 * MiB;
/** Files above this are chunked; at or below it, one presigned POST or a multipart upload. */
export const CHUNK_THRESHOLD = 128 * MiB;
/** A cut looks this far past its nominal offset for a newline; a longer row is an error. */
export const WINDOW = MiB;
/** The server's limit is 10,000 chunks (upload_max_chunks): a huge file gets bigger chunks. */
export const MAX_CHUNKS = 9000;
// The window is read in steps: the newline is usually within the first few bytes (4 KiB first, then 64 KiB).
const FIRST_STEP = 4 * 1024;
const STEP = 64 * 1024;
const NL = 10;
const QUOTE = 34;
export const CHUNKED_KINDS = ["ohlcv", "indicators", "predictions"];

export type Plan = {
  /** Length of the header line, its newline included. */
  header: number;
  /** [start, end) of each chunk's rows in the file; the first starts right after the header. */
  ranges: [number, number][];
  /** Each chunk's byte size as uploaded: the header, then its rows. */
  sizes: number[];
};

export class CutError extends Error {}

async function bytes(blob: Blob, start: number, end: number): Promise<Uint8Array> {
  return new Uint8Array(await blob.slice(start, end).arrayBuffer());
}

/** The offset just after the first newline at or after `pos`, reading at most `window` bytes;
 * the end of the file when the last row has no newline; a CutError for a row longer than the window. */
export async function nextLine(blob: Blob, pos: number, window = WINDOW): Promise<number> {
  const limit = Math.min(blob.size, pos + window);
  for (let at = pos, step = FIRST_STEP; at < limit; at += step, step = STEP) {
    const block = await bytes(blob, at, Math.min(limit, at + step));
    const i = block.indexOf(NL);
    if (i >= 0) return at + i + 1;
  }
  if (limit >= blob.size) return blob.size;
  throw new CutError(`a row near byte ${pos.toLocaleString("en")} is longer than ${window.toLocaleString("en")} bytes: the file cannot be cut into chunks`);
}

/** The chunk size for a file: `chunkBytes`, or larger so there are at most MAX_CHUNKS chunks. */
export function chunkSizeFor(size: number, chunkBytes: number): number {
  return Math.max(chunkBytes, Math.ceil(size / MAX_CHUNKS));
}

/** Cut after a newline about every `chunkBytes` bytes (reads only the window at each cut). */
export async function plan(blob: Blob, chunkBytes: number, window = WINDOW): Promise<Plan> {
  if (chunkBytes < 1) throw new CutError("the chunk size must be positive");
  const head = await bytes(blob, 0, Math.min(blob.size, window));
  const nl = head.indexOf(NL);
  if (nl < 0) throw new CutError(`no header line in the first ${window.toLocaleString("en")} bytes`);
  const header = nl + 1;
  const ranges: [number, number][] = [];
  for (let start = header; start < blob.size; ) {
    const nominal = start + chunkBytes;
    const end = nominal >= blob.size ? blob.size : await nextLine(blob, nominal, window);
    ranges.push([start, end]);
    start = end;
  }
  if (!ranges.length) throw new CutError("the file has a header and no rows");
  return { header, ranges, sizes: ranges.map(([s, e]) => header + (e - s)) };
}

/** Chunk `index` (1-based) as a Blob: the header then its rows. The first chunk is one slice (its
 * rows follow the header in the file); the others are [header slice, rows slice] (no copy). */
export function chunkBlob(blob: Blob, p: Plan, index: number): Blob {
  const [start, end] = p.ranges[index - 1];
  if (start === p.header) return blob.slice(0, end);
  return new Blob([blob.slice(0, p.header), blob.slice(start, end)], { type: "text/csv" });
}

/** Is this file cut into chunks? A CSV (by name) of a kind keyed by its own columns, above the
 * threshold, with a newline and no quote in its first window: a quoted field may hold a newline,
 * and a cut there would break a row (such a file goes up as one object, as with the Python client). */
export async function chunkable(file: Blob & { name: string }, kind: string, threshold: number, window = WINDOW): Promise<boolean> {
  if (!CHUNKED_KINDS.includes(kind) || !/\.(csv|txt)$/i.test(file.name) || file.size <= threshold) return false;
  const head = await bytes(file, 0, Math.min(file.size, window));
  return head.indexOf(QUOTE) < 0 && head.indexOf(NL) >= 0;
}

/** The chunking settings, from the page's query string (`?chunk_threshold=<bytes>&chunk_bytes=<bytes>`,
 * so a test can chunk a small file), bounded: chunks of 64 KiB to 1 GiB (one presigned PUT). */
export function chunkSettings(search: string): { threshold: number; chunkBytes: number } {
  const q = new URLSearchParams(search);
  const num = (name: string, dflt: number, lo: number, hi: number) => {
    const v = Number(q.get(name));
    return q.has(name) && Number.isFinite(v) ? Math.min(hi, Math.max(lo, Math.floor(v))) : dflt;
  };
  return { threshold: num("chunk_threshold", CHUNK_THRESHOLD, 0, 2 ** 50), chunkBytes: num("chunk_bytes", CHUNK_BYTES, 64 * 1024, 1024 * MiB) };
}

// ---------------------------------------------------------------- resume state (localStorage)
export type Saved = { upload_id: string; job_id: string; name: string; size: number; lastModified: number; dataset: string; kind: string; sizes: number[] };

/** The key of a file's unfinished upload: name, size and lastModified (and the target: the same
 * file sent to another dataset or as another kind is another upload). */
export function savedKey(f: { name: string; size: number; lastModified: number }, dataset: string, kind: string): string {
  return `stage1.upload:${JSON.stringify([f.name, f.size, f.lastModified, dataset, kind])}`;
}

export function loadSaved(store: Pick<Storage, "getItem">, key: string): Saved | null {
  try {
    const v = JSON.parse(store.getItem(key) ?? "null") as Saved | null;
    return v && typeof v.upload_id === "string" && Array.isArray(v.sizes) ? v : null;
  } catch {
    return null;
  }
}

/** Does the saved upload's chunk layout equal this plan's? (another chunk size, or the file changed
 * under the same name/size/date: start again) */
export function sameLayout(saved: Saved, p: Plan): boolean {
  return saved.sizes.length === p.sizes.length && saved.sizes.every((s, i) => s === p.sizes[i]);
}
