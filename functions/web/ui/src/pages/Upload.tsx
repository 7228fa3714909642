// Upload straight to the bucket: a presigned POST (one request) or presigned part PUTs (multipart,
// each part exactly its signed size), with a byte progress bar; then the import job's row progress.
import { useState, type DragEvent } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useParams } from "react-router-dom";
import { api, ok, type Schemas } from "../api/client";
import { ErrorBox, Section, Status } from "../components/ui";
import { fmt, fmtBytes, partSlices } from "../shape";

type Created = Schemas["UploadCreated"];
// CompleteRequest: the spec documents this body as raw JSON, so it is typed here.
type Part = { part_number: number; etag: string };

function send(method: string, url: string, body: XMLHttpRequestBodyInit, onBytes: (n: number) => void): Promise<XMLHttpRequest> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.upload.onprogress = (e) => onBytes(e.loaded);
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve(xhr) : reject(new Error(`the bucket answered ${xhr.status}: ${xhr.responseText.slice(0, 300)}`)));
    xhr.onerror = () => reject(new Error("the upload to the bucket failed (network or CORS)"));
    xhr.send(body);
  });
}

async function toBucket(file: File, up: Created, onProgress: (sent: number) => void): Promise<Part[] | undefined> {
  if (!up.multipart) {
    const form = new FormData();
    for (const [k, v] of Object.entries(up.fields ?? {})) form.append(k, v);
    form.append("file", file);
    await send(up.method || "POST", up.url, form, (n) => onProgress(Math.min(n, file.size)));
    onProgress(file.size);
    return undefined;
  }
  const slices = partSlices(file.size, up.part_size ?? file.size, up.parts ?? []);
  const urls = new Map((up.parts ?? []).map((p) => [p.part_number, p.url]));
  const done: number[] = [];
  const parts: Part[] = [];
  let etags = true;
  for (const s of slices) {
    const xhr = await send("PUT", urls.get(s.part)!, file.slice(s.start, s.end), (n) => onProgress(done.reduce((a, b) => a + b, 0) + n));
    done.push(s.end - s.start);
    onProgress(s.end);
    const etag = xhr.getResponseHeader("ETag");
    if (etag) parts.push({ part_number: s.part, etag }); else etags = false;
  }
  return etags ? parts : undefined; // without exposed ETags the server lists the parts itself
}

export default function Upload() {
  const id = useParams().id!;
  const qc = useQueryClient();
  const [file, setFile] = useState<File | null>(null);
  const [kind, setKind] = useState<"ohlcv" | "indicators">("ohlcv");
  const [sent, setSent] = useState(0);
  const [phase, setPhase] = useState<"idle" | "uploading" | "importing" | "done">("idle");
  const [jobId, setJobId] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [over, setOver] = useState(false);

  const job = useQuery({
    queryKey: ["job", jobId], enabled: !!jobId,
    queryFn: () => ok(api.GET("/api/jobs/{job_id}", { params: { path: { job_id: jobId! } } })),
    refetchInterval: (q) => (q.state.data && ["COMPLETED", "FAILED", "CANCELLED"].includes(q.state.data.status) ? false : 700),
  });
  if (job.data && phase === "importing" && ["COMPLETED", "FAILED", "CANCELLED"].includes(job.data.status)) {
    setPhase("done");
    qc.invalidateQueries({ queryKey: ["dataset", id] });
    qc.invalidateQueries({ queryKey: ["ohlcv", id] });
  }

  async function start() {
    if (!file) return;
    setError(null); setSent(0); setJobId(null); setPhase("uploading");
    try {
      const up = await ok(api.POST("/api/datasets/{dataset_id}/uploads", {
        params: { path: { dataset_id: id } },
        body: { filename: file.name, size: file.size, kind, content_type: file.type || "" },
      }));
      const parts = await toBucket(file, up, setSent);
      await ok(api.POST("/api/uploads/{upload_id}/complete", {
        params: { path: { upload_id: up.upload_id } },
        body: (parts ? { parts } : {}) as never,
      }));
      setJobId(up.job_id);
      setPhase("importing");
    } catch (e) {
      setError(e);
      setPhase("idle");
    }
  }
  function drop(e: DragEvent) {
    e.preventDefault(); setOver(false);
    const f = e.dataTransfer.files[0];
    if (f) setFile(f);
  }
  const pct = file ? Math.round((100 * sent) / Math.max(1, file.size)) : 0;
  const j = job.data;
  return (
    <>
      <h1>Upload to <Link to={`/datasets/${id}`}>{id}</Link></h1>
      <Section title="File">
        <div className={`drop ${over ? "over" : ""}`} onDragOver={(e) => { e.preventDefault(); setOver(true); }} onDragLeave={() => setOver(false)} onDrop={drop}>
          <p>Drop a CSV, CSV.gz, Parquet or Arrow file here, or</p>
          <label className="button">Choose a file<input type="file" className="hidden-input" data-testid="file" accept=".csv,.gz,.parquet,.arrow,.feather,.ipc" onChange={(e) => setFile(e.target.files?.[0] ?? null)} /></label>
          {file && <p><strong>{file.name}</strong> · {fmtBytes(file.size)}</p>}
        </div>
        <div className="filters">
          <label>Kind <select value={kind} onChange={(e) => setKind(e.target.value as typeof kind)}><option>ohlcv</option><option>indicators</option></select></label>
          <button onClick={start} disabled={!file || phase === "uploading" || phase === "importing"}>Upload</button>
        </div>
        <ErrorBox error={error} />
      </Section>
      {phase !== "idle" || jobId ? (
        <Section title="Progress">
          <label htmlFor="bytes">Bytes to the bucket: {fmtBytes(sent)} of {fmtBytes(file?.size ?? 0)} ({pct}%)</label>
          <progress id="bytes" max={file?.size ?? 1} value={sent} />
          {j && (
            <>
              <p>Import job <code>{j.job_id}</code> <Status value={j.status} /> · {j.progress.toLocaleString()} rows{j.total ? ` of ${j.total.toLocaleString()}` : ""}</p>
              <progress aria-label="rows imported" max={j.total ?? Math.max(1, j.progress)} value={j.progress} />
              {j.error && <div className="error" role="alert" data-testid="job-error"><strong>{j.error}</strong>{j.result ? <pre>{JSON.stringify(j.result, null, 2)}</pre> : null}</div>}
              {j.status === "COMPLETED" && <p data-testid="import-done">Imported. <Link to={`/datasets/${id}`}>See the candles</Link>. {j.result ? <span className="muted small">{fmt((j.result as Record<string, unknown>).rows_written)} rows written in {fmt((j.result as Record<string, unknown>).seconds)} s</span> : null}</p>}
            </>
          )}
        </Section>
      ) : null}
    </>
  );
}
