import { describe, expect, it } from "vitest";
import { ATTEMPTS, retrying, sendAll, type Failed } from "./retry";
import { toBucket, type Send } from "./objectUpload";
import type { Schemas } from "./api/client";

// The errors bucket.ts `send` rejects with.
const net = () => Object.assign(new Error("the upload to the bucket failed (network or CORS)"), { status: 0, retry: true });
const status = (s: number) => Object.assign(new Error(`the bucket answered ${s}: <Error/>`), { status: s, retry: s >= 500 });
const noSleep = { sleep: async () => {} };
/** The error a promise is rejected with (fails the test when it resolves). */
async function rejection<E = Failed>(p: Promise<unknown>): Promise<E> {
  try { await p; } catch (e) { return e as E; }
  throw new Error("resolved, expected a rejection");
}

describe("retrying one request", () => {
  it("retries network errors and 5xx, and returns the attempt that passed", async () => {
    const errors = [net(), status(503)];
    let calls = 0;
    const r = await retrying(async () => { calls++; const e = errors.shift(); if (e) throw e; return "ok"; }, () => {}, noSleep);
    expect(r).toBe("ok");
    expect(calls).toBe(3);
  });
  it("never retries a 4xx", async () => {
    for (const s of [400, 403, 404, 411]) {
      let calls = 0;
      const e = await rejection(retrying(async () => { calls++; throw status(s); }, () => {}, noSleep));
      expect(calls).toBe(1);
      expect(e.status).toBe(s);
      expect(e.attempts).toBe(1);
    }
  });
  it("gives up after ATTEMPTS, pausing longer each time", async () => {
    const pauses: number[] = [];
    let calls = 0;
    const e = await rejection(retrying(async () => { calls++; throw status(502); }, () => {}, { sleep: async (ms) => { pauses.push(ms); } }));
    expect(calls).toBe(ATTEMPTS);
    expect(e.attempts).toBe(ATTEMPTS);
    expect(e.status).toBe(502);
    expect(pauses.length).toBe(ATTEMPTS - 1);
    expect(pauses[1]).toBeGreaterThan(pauses[0]);
  });
  it("stops retrying once told to give up", async () => {
    let calls = 0;
    await expect(retrying(async () => { calls++; throw net(); }, () => {}, { ...noSleep, giveUp: () => true })).rejects.toThrow();
    expect(calls).toBe(1);
  });
});

describe("sending items with bounded concurrency", () => {
  it("counts a failed attempt's bytes once: the progress never goes past the total and ends at it", async () => {
    const items = [1, 2, 3, 4, 5, 6].map((id) => ({ id, size: 100 }));
    const failedOnce = new Set<number>();
    const seen: number[] = [];
    let running = 0, peak = 0;
    const out = await sendAll(items, {
      ...noSleep, concurrency: 3,
      send: async (it, onBytes) => {
        running++; peak = Math.max(peak, running);
        try {
          onBytes(60);
          await new Promise((r) => setTimeout(r, 1));
          if (it.id % 2 === 0 && !failedOnce.has(it.id)) { failedOnce.add(it.id); throw net(); }
          onBytes(100);
          return `etag-${it.id}`;
        } finally { running--; }
      },
      onBytes: (n) => seen.push(n),
      failure: (_it, e) => e,
    });
    expect(out).toEqual(items.map((it) => `etag-${it.id}`)); // in the items' order
    expect(failedOnce.size).toBe(3);
    expect(peak).toBe(3);
    expect(Math.max(...seen)).toBe(600);
    expect(seen[seen.length - 1]).toBe(600);
  });
  it("the first item that fails for good stops the others taking new items, and its failure is thrown", async () => {
    const items = Array.from({ length: 20 }, (_, i) => ({ id: i + 1, size: 10 }));
    const sent: number[] = [];
    const e = await rejection<Error>(sendAll(items, {
      ...noSleep, concurrency: 2,
      send: async (it) => { sent.push(it.id); if (it.id === 3) throw status(500); },
      onBytes: () => {},
      failure: (it, f) => new Error(`item ${it.id}: ${f.message} (${f.attempts} attempts)`),
    }));
    expect(e.message).toMatch(/^item 3: the bucket answered 500.*\(3 attempts\)$/);
    expect(sent.filter((i) => i === 3).length).toBe(ATTEMPTS);
    expect(sent.length).toBeLessThan(10);
  });
});

describe("the one-object upload (presigned POST or multipart parts)", () => {
  const PART = 1000; // the parts only need their signed sizes here, not S3's minimum
  // A bucket: keeps what each request carried, answers an ETag; `fail` decides which attempts fail.
  function bucket(fail: (url: string, attempt: number) => Error | null) {
    const got = new Map<string, Blob[]>();
    const load = { now: 0, peak: 0 };
    const send: Send = async (_method, url, body, onBytes) => {
      load.peak = Math.max(load.peak, ++load.now);
      await new Promise((r) => setTimeout(r, 1));
      load.now--;
      const attempts = got.get(url) ?? [];
      const blob = body instanceof FormData ? (body.get("file") as Blob) : (body as Blob);
      attempts.push(blob);
      got.set(url, attempts);
      onBytes(Math.floor(blob.size / 2));
      const e = fail(url, attempts.length);
      if (e) throw e;
      onBytes(blob.size);
      return { getResponseHeader: (h: string) => (h === "ETag" ? `"etag-${url}"` : null) };
    };
    return { got, send, load };
  }
  const multipart = (size: number, partSize: number): Schemas["UploadCreated"] => {
    const n = Math.ceil(size / partSize);
    return {
      upload_id: "u", job_id: "j", url: "p1", fields: null, method: "PUT", expires_at: new Date(Date.now() + 3600e3).toISOString(),
      object_key: "k", measurement: "m", kind: "ohlcv", format: "csv", multipart: true, part_size: partSize,
      parts: Array.from({ length: n }, (_, i) => ({ part_number: i + 1, url: `p${i + 1}`, size: Math.min(partSize, size - i * partSize) })),
      complete_url: "", poll_url: "",
    } as Schemas["UploadCreated"];
  };

  it("multipart: each part retried on its own, the ETags in part order, the bytes of each part exact", async () => {
    const file = new Blob([new Uint8Array(5 * PART + 123).map((_, i) => i % 251)]);
    const b = bucket((url, attempt) => (url === "p2" && attempt === 1 ? net() : url === "p4" && attempt < 3 ? status(503) : null));
    const progress: number[] = [];
    const parts = await toBucket(file, multipart(file.size, PART), (n) => progress.push(n), { send: b.send, ...noSleep });
    expect(parts).toEqual([1, 2, 3, 4, 5, 6].map((n) => ({ part_number: n, etag: `"etag-p${n}"` })));
    expect(b.got.get("p2")!.length).toBe(2);
    expect(b.got.get("p4")!.length).toBe(3);
    expect(b.load.peak).toBe(4); // CONCURRENCY parts at once
    const all = new Uint8Array(await file.arrayBuffer());
    for (let n = 1; n <= 6; n++) {
      const last = b.got.get(`p${n}`)!.at(-1)!;
      expect(new Uint8Array(await last.arrayBuffer())).toEqual(all.slice((n - 1) * PART, Math.min(n * PART, file.size)));
    }
    expect(Math.max(...progress)).toBe(file.size);
    expect(progress.at(-1)).toBe(file.size);
  });
  it("multipart: a 403 on a part says the URLs most likely expired and to start again, without retrying", async () => {
    const file = new Blob([new Uint8Array(3 * PART)]);
    const b = bucket((url) => (url === "p2" ? status(403) : null));
    const e = await rejection<Error & { status: number }>(toBucket(file, multipart(file.size, PART), () => {}, { send: b.send, ...noSleep }));
    expect(e.message).toMatch(/^part 2 of 3: the bucket answered 403.*most likely expired.*start the upload again$/);
    expect(e.status).toBe(403);
    expect(b.got.get("p2")!.length).toBe(1);
  });
  // A multipart upload whose URLs expired after `landed` parts: every PUT to an old URL is a 403 from
  // then on; resume answers the parts the bucket has not taken, with fresh URLs (`<url>-new`).
  function expiring(parts: number, landed: number) {
    const stored = new Map<number, string>();
    let calls = 0;
    const b = bucket((url) => {
      const n = Number(url.replace(/^p(\d+).*$/, "$1"));
      if (!url.endsWith("-new") && (stored.size >= landed || n > landed)) return status(403);
      stored.set(n, url);
      return null;
    });
    const resume = async () => {
      calls++;
      const missing = Array.from({ length: parts }, (_, i) => i + 1).filter((n) => !stored.has(n));
      return { upload_id: "u", parts_missing: missing, parts: missing.map((n) => ({ part_number: n, url: `p${n}-new`, size: PART })) };
    };
    return { ...b, stored, resume, calls: () => calls };
  }
  it("multipart: a 403 (expired URLs) re-signs the missing parts once and goes on; complete then lists the ETags", async () => {
    const file = new Blob([new Uint8Array(6 * PART).map((_, i) => i % 251)]);
    const b = expiring(6, 3);
    const progress: number[] = [];
    const parts = await toBucket(file, multipart(file.size, PART), (n) => progress.push(n),
      { send: b.send, resume: b.resume, ...noSleep });
    expect(parts).toBeUndefined(); // the ETags of the parts sent before the resume are the server's to list
    expect(b.calls()).toBe(1);
    expect([...b.stored.keys()].sort()).toEqual([1, 2, 3, 4, 5, 6]);
    const all = new Uint8Array(await file.arrayBuffer());
    for (const [n, url] of b.stored) {
      expect(url.endsWith("-new")).toBe(n > 3); // the old URL for the parts sent before, a fresh one after
      expect(new Uint8Array(await b.got.get(url)!.at(-1)!.arrayBuffer())).toEqual(all.slice((n - 1) * PART, n * PART));
      expect(b.got.get(`p${n}-new`)?.length ?? 0).toBe(n > 3 ? 1 : 0); // only the missing parts are sent again
    }
    expect(Math.max(...progress)).toBe(file.size);
    expect(progress.at(-1)).toBe(file.size);
  });
  it("multipart: when resume fails, or its fresh URLs are refused too, the 403 says to start again", async () => {
    const file = new Blob([new Uint8Array(3 * PART)]);
    const b = expiring(3, 1);
    const failing = async () => { throw new Error("409 the upload's job is CANCELLED"); };
    const e = await rejection<Error & { status: number }>(toBucket(file, multipart(file.size, PART), () => {},
      { send: b.send, resume: failing, ...noSleep }));
    expect(e.message).toMatch(/^part 2 of 3: the bucket answered 403.*start the upload again$/);
    expect(e.status).toBe(403);
    let calls = 0;
    const stale = bucket(() => status(403)); // the fresh URLs are refused as well: resume is not asked twice
    const again = await rejection<Error>(toBucket(file, multipart(file.size, PART), () => {},
      { send: stale.send, resume: async () => { calls++; return { upload_id: "u", parts_missing: [1, 2, 3], parts: [1, 2, 3].map((n) => ({ part_number: n, url: `q${n}`, size: PART })) }; }, ...noSleep }));
    expect(again.message).toMatch(/^part \d of 3: the bucket answered 403.*start the upload again$/);
    expect(calls).toBe(1);
  });
  it("multipart: a resume whose parts are not this file's cut is not used", async () => {
    const file = new Blob([new Uint8Array(3 * PART)]);
    const b = expiring(3, 1);
    const wrong = async () => ({ upload_id: "u", parts_missing: [2, 3], parts: [{ part_number: 2, url: "p2-new", size: PART - 1 }] });
    const e = await rejection<Error>(toBucket(file, multipart(file.size, PART), () => {}, { send: b.send, resume: wrong, ...noSleep }));
    expect(e.message).toMatch(/start the upload again$/);
    expect(b.got.has("p2-new")).toBe(false);
  });
  it("multipart: a part that keeps failing ends the upload with its number and the attempts", async () => {
    const file = new Blob([new Uint8Array(3 * PART)]);
    const b = bucket((url) => (url === "p3" ? status(500) : null));
    await expect(toBucket(file, multipart(file.size, PART), () => {}, { send: b.send, ...noSleep }))
      .rejects.toThrow(/^part 3 of 3: the bucket answered 500.*\(after 3 attempts\)$/);
  });
  it("the single POST: a network error re-sends the whole file, the progress ends at its size", async () => {
    const file = new Blob(["timestamp,close\n1,2\n"]);
    const up = { ...multipart(file.size, PART), multipart: false, method: "POST", url: "post", fields: { key: "k" }, parts: null };
    const b = bucket((_url, attempt) => (attempt === 1 ? net() : null));
    const progress: number[] = [];
    expect(await toBucket(file, up, (n) => progress.push(n), { send: b.send, ...noSleep })).toBeUndefined();
    expect(b.got.get("post")!.length).toBe(2);
    expect(await b.got.get("post")![1].text()).toBe("timestamp,close\n1,2\n");
    expect(progress.at(-1)).toBe(file.size);
    expect(Math.max(...progress)).toBe(file.size);
  });
});
