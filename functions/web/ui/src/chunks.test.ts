import { describe, expect, it } from "vitest";
import { chunkBlob, chunkSettings, chunkSizeFor, chunkable, CutError, loadSaved, nextLine, plan, sameLayout, savedKey, CHUNK_BYTES, CHUNK_THRESHOLD, MAX_CHUNKS } from "./chunks";

const HEADER = "timestamp,open,high,low,close,volume";
function csv(rows: number, nl = "\n", trailing = true): string {
  const lines = [HEADER];
  for (let i = 0; i < rows; i++) lines.push(`${1704067200 + i * 60},${100 + (i % 7)},${101 + (i % 5)},99.5,100.25,${i * 3}`);
  return lines.join(nl) + (trailing ? nl : "");
}
const text = (b: Blob) => b.text();

/** Every chunk's text; asserts each is the header then whole rows, and the sizes are the blobs'. */
async function chunks(blob: Blob, chunkBytes: number, window?: number): Promise<string[]> {
  const p = await plan(blob, chunkBytes, window);
  const out: string[] = [];
  for (let i = 1; i <= p.ranges.length; i++) {
    const c = chunkBlob(blob, p, i);
    expect(c.size).toBe(p.sizes[i - 1]);
    out.push(await text(c));
  }
  return out;
}

describe("cutting a CSV at row boundaries", () => {
  it("cuts after a newline, each chunk starts with the header, the rows are the file's in order", async () => {
    const src = csv(1000);
    const parts = await chunks(new Blob([src]), 4000);
    expect(parts.length).toBeGreaterThan(5);
    for (const p of parts) {
      expect(p.startsWith(HEADER + "\n")).toBe(true);
      expect(p.endsWith("\n")).toBe(true);
    }
    const rows = parts.flatMap((p) => p.split("\n").slice(1, -1));
    expect(rows).toEqual(src.split("\n").slice(1, -1));
  });
  it("keeps CRLF rows whole (the cut is after the \\n of \\r\\n) and the header's CRLF", async () => {
    const src = csv(500, "\r\n");
    const parts = await chunks(new Blob([src]), 3000);
    expect(parts.length).toBeGreaterThan(3);
    for (const p of parts) {
      expect(p.startsWith(HEADER + "\r\n")).toBe(true);
      expect(p.endsWith("\r\n")).toBe(true);
      expect(p.slice(0, -2)).not.toMatch(/\r(?!\n)|(?<!\r)\n/);
    }
    expect(parts.map((p) => p.slice(HEADER.length + 2)).join("")).toBe(src.slice(HEADER.length + 2));
  });
  it("a file without a trailing newline: its last row ends the last chunk", async () => {
    const src = csv(300, "\n", false);
    const parts = await chunks(new Blob([src]), 2000);
    const last = parts[parts.length - 1];
    expect(last.endsWith(`\n${src.slice(src.lastIndexOf("\n") + 1)}`)).toBe(true);
    expect(last.endsWith(",897")).toBe(true); // the last row: volume 299 * 3, no newline after it
    expect(parts.map((p) => p.slice(HEADER.length + 1)).join("")).toBe(src.slice(HEADER.length + 1));
  });
  it("a cut landing in the last row (no newline, end in the window) takes it whole", async () => {
    const src = `${HEADER}\n1,1,1,1,1,1\n2,2,2,2,2,2`;
    const p = await plan(new Blob([src]), 15);
    expect(p.ranges).toEqual([[HEADER.length + 1, src.length]]);
  });
  it("a file smaller than one chunk is one chunk: the file itself", async () => {
    const src = csv(10);
    const blob = new Blob([src]);
    const p = await plan(blob, CHUNK_BYTES);
    expect(p.sizes).toEqual([src.length]);
    expect(await text(chunkBlob(blob, p, 1))).toBe(src);
  });
  it("the sizes add up to the file plus one header per later chunk", async () => {
    const src = csv(2000);
    const p = await plan(new Blob([src]), 5000);
    expect(p.sizes.reduce((a, b) => a + b, 0)).toBe(src.length + (p.sizes.length - 1) * (HEADER.length + 1));
  });
  it("a row longer than the window is a clear error", async () => {
    const long = "9".repeat(5000);
    const src = `${HEADER}\n1,1,1,1,1,1\n2,2,2,2,2,${long}\n3,3,3,3,3,3\n`;
    await expect(plan(new Blob([src]), 20, 1000)).rejects.toThrow(/longer than 1,000 bytes/);
    await expect(nextLine(new Blob([src]), 70, 1000)).rejects.toBeInstanceOf(CutError);
  });
  it("a header longer than the window, or no rows, is an error", async () => {
    await expect(plan(new Blob(["a".repeat(3000)]), 100, 1000)).rejects.toThrow(/no header line/);
    await expect(plan(new Blob([HEADER + "\n"]), 100)).rejects.toThrow(/no rows/);
  });
  it("a newline far inside a long window is found (the window is read in steps)", async () => {
    const src = `h\n${"x".repeat(200_000)}\nlast\n`;
    expect(await nextLine(new Blob([src]), 3, 300_000)).toBe(src.indexOf("\nlast") + 1);
  });
  it("reads only a small window at each cut, never the file: a 4 GiB file is planned from ~1.5 MiB of reads", async () => {
    // A file-like Blob whose bytes are made on demand (header, then 50-byte rows): slice() records what is read.
    const head = HEADER + "\n", row = "1704067200,100.1,100.2,99.9,100.05,12345678901234\n";
    expect(row.length).toBe(50);
    let read = 0;
    const at = (o: number) => (o < head.length ? head[o] : row[(o - head.length) % row.length]);
    const fake = (size: number): Blob => ({
      size,
      slice(start = 0, end = size) {
        const a = Math.max(0, start), b = Math.min(size, end);
        return { size: b - a, async arrayBuffer() { read += b - a; let t = ""; for (let o = a; o < b; o++) t += at(o); return new TextEncoder().encode(t).buffer; } } as unknown as Blob;
      },
    }) as unknown as Blob;
    const size = 4 * 1024 ** 3;
    const p = await plan(fake(size), CHUNK_BYTES);
    expect(p.ranges.length).toBe(128);
    expect(p.ranges[p.ranges.length - 1][1]).toBe(size);
    for (const [, e] of p.ranges.slice(0, -1)) expect(at(e - 1)).toBe("\n");
    expect(read).toBeLessThanOrEqual(1024 ** 2 + 127 * 4 * 1024); // the header's window, then 4 KiB per cut
  });
  it("a huge file gets chunks large enough to stay under the server's chunk count", () => {
    expect(chunkSizeFor(100, CHUNK_BYTES)).toBe(CHUNK_BYTES);
    const size = 2 ** 40;
    expect(Math.ceil(size / chunkSizeFor(size, CHUNK_BYTES))).toBeLessThanOrEqual(MAX_CHUNKS);
  });
});

describe("which files are chunked", () => {
  const file = (name: string, body: string) => Object.assign(new Blob([body]), { name });
  it("a CSV of an ohlcv/indicators kind above the threshold", async () => {
    expect(await chunkable(file("a.csv", csv(100)), "ohlcv", 100)).toBe(true);
    expect(await chunkable(file("a.CSV", csv(100)), "indicators", 100)).toBe(true);
  });
  it("not: small, Parquet/Arrow/gzip by name, a quote in the head, no newline", async () => {
    expect(await chunkable(file("a.csv", csv(100)), "ohlcv", 10 ** 9)).toBe(false);
    expect(await chunkable(file("a.parquet", csv(100)), "ohlcv", 0)).toBe(false);
    expect(await chunkable(file("a.csv.gz", csv(100)), "ohlcv", 0)).toBe(false);
    expect(await chunkable(file("a.arrow", csv(100)), "ohlcv", 0)).toBe(false);
    expect(await chunkable(file("a.csv", `"ts",x\n1,2\n`), "ohlcv", 0)).toBe(false);
    expect(await chunkable(file("a.csv", "x".repeat(50)), "ohlcv", 0)).toBe(false);
    expect(await chunkable(file("a.csv", csv(100)), "raw", 0)).toBe(false);
  });
  it("settings from the query string, bounded", () => {
    expect(chunkSettings("")).toEqual({ threshold: CHUNK_THRESHOLD, chunkBytes: CHUNK_BYTES });
    expect(chunkSettings("?chunk_threshold=1000&chunk_bytes=300000")).toEqual({ threshold: 1000, chunkBytes: 300000 });
    expect(chunkSettings("?chunk_bytes=1").chunkBytes).toBe(64 * 1024);
    expect(chunkSettings("?chunk_bytes=1e12").chunkBytes).toBe(1024 ** 3);
    expect(chunkSettings("?chunk_threshold=abc").threshold).toBe(CHUNK_THRESHOLD);
  });
});

describe("resume state", () => {
  const f = { name: "bars.csv", size: 1234, lastModified: 1700000000000 };
  it("is keyed by name, size, lastModified and the target", () => {
    expect(savedKey(f, "ds", "ohlcv")).toBe(savedKey({ ...f }, "ds", "ohlcv"));
    expect(savedKey(f, "ds", "ohlcv")).not.toBe(savedKey({ ...f, lastModified: 1 }, "ds", "ohlcv"));
    expect(savedKey(f, "ds", "ohlcv")).not.toBe(savedKey(f, "other", "ohlcv"));
  });
  it("garbage in the store is no saved upload; the layout must match the plan", async () => {
    const store = (v: string | null) => ({ getItem: () => v });
    expect(loadSaved(store("{nope"), "k")).toBeNull();
    expect(loadSaved(store('{"upload_id": 3}'), "k")).toBeNull();
    const saved = { upload_id: "u", job_id: "j", ...f, dataset: "ds", kind: "ohlcv", sizes: [10, 20] };
    expect(loadSaved(store(JSON.stringify(saved)), "k")).toEqual(saved);
    const p = await plan(new Blob([csv(200)]), 2000);
    expect(sameLayout({ ...saved, sizes: p.sizes }, p)).toBe(true);
    expect(sameLayout(saved, p)).toBe(false);
  });
});
