// Upload straight to the bucket: a presigned POST (one request) or presigned part PUTs (multipart,
// each part exactly its signed size, 4 at once; objectUpload.ts), every request retried on network
// errors and 5xx, with a byte progress bar; then the import job's row progress.
// A CSV above the chunk threshold goes up in chunks imported as they land, resumable (chunkedUpload.ts).
import { useEffect, useRef, useState, type DragEvent } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useLocation, useParams } from "react-router-dom";
import { api, ok } from "../api/client";
import { ErrorBox, Section, Status } from "../components/ui";
import { fmt, fmtBytes } from "../shape";
import { chunkable, chunkSettings } from "../chunks";
import { chunkedUpload, forget, savedUpload, type Started } from "../chunkedUpload";
import { toBucket } from "../objectUpload";

export default function Upload() {
  const id = useParams().id!;
  const qc = useQueryClient();
  const settings = chunkSettings(useLocation().search);
  const [file, setFile] = useState<File | null>(null);
  const [kind, setKind] = useState<"ohlcv" | "indicators">("ohlcv");
  const [sent, setSent] = useState(0);
  const [total, setTotal] = useState(0);
  const [phase, setPhase] = useState<"idle" | "uploading" | "importing" | "done">("idle");
  const [jobId, setJobId] = useState<string | null>(null);
  const [chunked, setChunked] = useState<Started | null>(null);
  const [chunksSent, setChunksSent] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const [over, setOver] = useState(false);

  // Will this file go up in chunks? (a CSV of this kind above the threshold, no quote in its first MiB)
  const [willChunk, setWillChunk] = useState(false);
  useEffect(() => {
    let live = true;
    setWillChunk(false);
    if (file) chunkable(file, kind, settings.threshold).then((v) => live && setWillChunk(v), () => {});
    return () => { live = false; };
  }, [file, kind, settings.threshold]);

  // An unfinished chunked upload of this very file (same name, size, lastModified, target): what the server has of it.
  const saved = file && willChunk && phase === "idle" && !jobId ? savedUpload(file, id, kind) : null;
  const earlier = useQuery({
    queryKey: ["upload", "earlier", saved?.upload_id], enabled: !!saved, retry: false,
    queryFn: () => ok(api.GET("/api/uploads/{upload_id}", { params: { path: { upload_id: saved!.upload_id } } })),
  });

  const terminal = (s?: string) => !!s && ["COMPLETED", "FAILED", "CANCELLED"].includes(s);
  const job = useQuery({
    queryKey: ["job", jobId], enabled: !!jobId,
    queryFn: () => ok(api.GET("/api/jobs/{job_id}", { params: { path: { job_id: jobId! } } })),
    refetchInterval: (q) => (terminal(q.state.data?.status) ? false : 700),
  });
  // A chunked upload: which chunks the server has imported (asking also nudges a chunk whose event was lost).
  const upStatus = useQuery({
    queryKey: ["upload", chunked?.uploadId], enabled: !!chunked,
    queryFn: () => ok(api.GET("/api/uploads/{upload_id}", { params: { path: { upload_id: chunked!.uploadId } } })),
    refetchInterval: (q) => (terminal(q.state.data?.job_status) ? false : 1500),
  });
  // The job's state, read by the chunk senders: once it has ended no more chunks are sent.
  const jobState = useRef<string | undefined>(undefined);
  jobState.current = job.data?.status;
  const ended = terminal(job.data?.status);
  useEffect(() => {
    if (chunked && ended) forget(chunked.key); // nothing left to resume
  }, [chunked, ended]);
  if (job.data && phase === "importing" && ended) {
    setPhase("done");
    if (chunked) qc.invalidateQueries({ queryKey: ["upload", chunked.uploadId] });
    qc.invalidateQueries({ queryKey: ["dataset", id] });
    qc.invalidateQueries({ queryKey: ["ohlcv", id] });
  }

  async function start() {
    if (!file) return;
    setError(null); setSent(0); setTotal(file.size); setJobId(null); setChunked(null); setChunksSent(0); setPhase("uploading");
    try {
      if (await chunkable(file, kind, settings.threshold)) {
        const done = await chunkedUpload(file, id, kind, settings.chunkBytes, {
          onStarted: (s) => { setChunked(s); setTotal(s.total); setSent(s.have); setJobId(s.jobId); },
          onBytes: setSent,
          onChunkSent: () => setChunksSent((n) => n + 1),
          stopReason: () => (terminal(jobState.current) ? `the import job is ${jobState.current}: no more chunks are sent` : null),
        });
        if (done) { setPhase("importing"); return; }
        setChunked(null); setSent(0); setTotal(file.size); // an older server: one object after all
      }
      const up = await ok(api.POST("/api/datasets/{dataset_id}/uploads", {
        params: { path: { dataset_id: id } },
        body: { filename: file.name, size: file.size, kind, content_type: file.type || "" },
      }));
      const parts = await toBucket(file, up, setSent, {
        resume: () => ok(api.POST("/api/uploads/{upload_id}/resume", { params: { path: { upload_id: up.upload_id } } })),
      });
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
  function pick(f: File | null) {
    setFile(f); setPhase("idle"); setJobId(null); setChunked(null); setError(null); setSent(0);
  }
  function drop(e: DragEvent) {
    e.preventDefault(); setOver(false);
    const f = e.dataTransfer.files[0];
    if (f) pick(f);
  }
  const pct = Math.round((100 * sent) / Math.max(1, total));
  const j = job.data;
  const u = upStatus.data;
  return (
    <>
      <h1>Upload to <Link to={`/datasets/${id}`}>{id}</Link></h1>
      <Section title="File">
        <div className={`drop ${over ? "over" : ""}`} onDragOver={(e) => { e.preventDefault(); setOver(true); }} onDragLeave={() => setOver(false)} onDrop={drop}>
          <p>Drop a CSV, CSV.gz, Parquet or Arrow file here, or</p>
          <label className="button">Choose a file<input type="file" className="hidden-input" data-testid="file" accept=".csv,.gz,.parquet,.arrow,.feather,.ipc" onChange={(e) => pick(e.target.files?.[0] ?? null)} /></label>
          {file && <p><strong>{file.name}</strong> · {fmtBytes(file.size)}{willChunk ? <span className="muted small" data-testid="will-chunk"> · goes up in chunks of about {fmtBytes(settings.chunkBytes)}, imported as they land, resumable</span> : null}</p>}
        </div>
        {saved && (earlier.data || earlier.error) ? (
          <p data-testid="earlier" className="muted">
            {earlier.data && !terminal(earlier.data.job_status)
              ? `An unfinished upload of this file: ${earlier.data.chunk_count - (earlier.data.missing?.length ?? 0)} of ${earlier.data.chunk_count} chunks already on the server. Upload sends only the missing ones.`
              : `An earlier upload of this file ${earlier.data ? `ended (its job is ${earlier.data.job_status})` : "is unknown to the server (expired?)"}: Upload starts again.`}
          </p>
        ) : null}
        <div className="filters">
          <label>Kind <select value={kind} onChange={(e) => setKind(e.target.value as typeof kind)}><option>ohlcv</option><option>indicators</option></select></label>
          <button onClick={start} disabled={!file || phase === "uploading" || phase === "importing"}>Upload</button>
        </div>
        <ErrorBox error={error} />
        {error && chunked && !ended ? <p className="muted" data-testid="resume-hint">The chunks sent so far stay on the server: upload the same file again (here, or after a reload) and only the missing chunks are sent.</p> : null}
      </Section>
      {phase !== "idle" || jobId ? (
        <Section title="Progress">
          {chunked?.note && <p data-testid="upload-note">{chunked.note}</p>}
          <label htmlFor="bytes">Bytes to the bucket: {fmtBytes(sent)} of {fmtBytes(total)} ({pct}%)</label>
          <progress id="bytes" max={Math.max(1, total)} value={sent} />
          {chunked && (
            <p data-testid="chunk-progress">
              {chunked.chunkCount.toLocaleString()} chunks · {chunksSent.toLocaleString()} sent from this page
              {u ? <> · <span data-testid="chunks-imported">{u.chunks_imported}</span> imported ({u.rows.toLocaleString()} rows){u.missing?.length ? ` · ${u.missing.length} not on the server yet` : ""}</> : null}
            </p>
          )}
          {j && (
            <>
              <p>Import job <code>{j.job_id}</code> <Status value={j.status} /> · {j.progress.toLocaleString()} rows{j.total ? ` of ${j.total.toLocaleString()}` : ""}</p>
              <progress aria-label="rows imported" max={j.total ?? Math.max(1, j.progress)} value={j.progress} />
              {j.error && <div className="error" role="alert" data-testid="job-error"><strong>{j.error}</strong>{j.result ? <pre>{JSON.stringify(j.result, null, 2)}</pre> : null}</div>}
              {j.status === "COMPLETED" && <p data-testid="import-done">Imported. <Link to={`/datasets/${id}`}>See the candles</Link>. {j.result ? <span className="muted small">{fmt((j.result as Record<string, unknown>).rows_written ?? (j.result as Record<string, unknown>).rows)} rows written in {fmt((j.result as Record<string, unknown>).seconds)} s</span> : null}</p>}
            </>
          )}
        </Section>
      ) : null}
    </>
  );
}
