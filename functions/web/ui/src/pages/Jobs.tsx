import { useState } from "react";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ok } from "../api/client";
import { Empty, ErrorBox, Pager, Status } from "../components/ui";
import { fmt } from "../shape";

const LIMIT = 30;
const ACTIVE = ["PENDING", "RUNNING"];

export default function Jobs() {
  const qc = useQueryClient();
  const [status, setStatus] = useState("");
  const [type, setType] = useState("");
  const [offset, setOffset] = useState(0);
  const jobs = useQuery({
    queryKey: ["jobs", status, type, offset], placeholderData: keepPreviousData,
    queryFn: () => ok(api.GET("/api/jobs", { params: { query: { status: (status || undefined) as never, job_type: (type || undefined) as never, limit: LIMIT, offset } } })),
    refetchInterval: 2000, // live list: polling
  });
  const act = useMutation({
    mutationFn: ({ id, action }: { id: string; action: "cancel" | "retry" }) =>
      action === "cancel"
        ? ok(api.POST("/api/jobs/{job_id}/cancel", { params: { path: { job_id: id } } }))
        : ok(api.POST("/api/jobs/{job_id}/retry", { params: { path: { job_id: id } } })),
    onSettled: () => qc.invalidateQueries({ queryKey: ["jobs"] }),
  });
  return (
    <>
      <h1>Jobs</h1>
      <form className="filters" onSubmit={(e) => e.preventDefault()}>
        <label>Status <select value={status} onChange={(e) => { setStatus(e.target.value); setOffset(0); }}><option value="">any</option>{["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"].map((s) => <option key={s}>{s}</option>)}</select></label>
        <label>Type <select value={type} onChange={(e) => { setType(e.target.value); setOffset(0); }}><option value="">any</option><option>import</option><option>export</option></select></label>
        <span className="muted small">refreshes every 2 s</span>
      </form>
      <ErrorBox error={jobs.error || act.error} />
      {jobs.data?.items.length === 0 && <Empty>No jobs yet. Uploads and exports create them.</Empty>}
      {!!jobs.data?.items.length && (
        <div className="scroll"><table data-testid="jobs-table">
          <thead><tr><th>Job</th><th>Type</th><th>Status</th><th>Progress</th><th>Created</th><th>Error / result</th><th><span className="sr-only">actions</span></th></tr></thead>
          <tbody>{jobs.data.items.map((j) => (
            <tr key={j.job_id}>
              <td className="mono small">{j.job_id.slice(0, 8)}</td><td>{j.job_type}</td><td><Status value={j.status} /></td>
              <td><progress aria-label={`progress of ${j.job_id}`} max={j.total ?? Math.max(1, j.progress)} value={j.progress} /> <span className="small">{j.progress.toLocaleString()}{j.total ? ` / ${j.total.toLocaleString()}` : ""}</span></td>
              <td className="small">{j.created_at.replace("T", " ").slice(0, 19)}</td>
              <td className="small clip">{j.error ? <span className="neg">{j.error}</span> : (j.result as { url?: string } | null)?.url ? <a href={(j.result as { url: string }).url}>download</a> : fmt(j.result)}</td>
              <td>
                {ACTIVE.includes(j.status) && <button onClick={() => act.mutate({ id: j.job_id, action: "cancel" })}>Cancel</button>}
                {["FAILED", "CANCELLED"].includes(j.status) && <button onClick={() => act.mutate({ id: j.job_id, action: "retry" })}>Retry</button>}
              </td>
            </tr>
          ))}</tbody>
        </table></div>
      )}
      {jobs.data && <Pager offset={offset} limit={LIMIT} total={jobs.data.total} onChange={setOffset} />}
    </>
  );
}
