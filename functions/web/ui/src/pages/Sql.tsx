// Read-only SQL console (POST /api/questdb/query runs as QuestDB's read-only user) and export through
// the export job (POST /api/questdb/export?mode=job, then the job's download URL).
import { useState, type KeyboardEvent } from "react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { api, ok } from "../api/client";
import { ErrorBox, Section, Status } from "../components/ui";
import { fmt } from "../shape";

export default function Sql() {
  const [sql, setSql] = useState("select * from long_sequence(5)");
  const [jobId, setJobId] = useState<string | null>(null);
  const run = useMutation({ mutationFn: (q: string) => ok(api.POST("/api/questdb/query", { body: { sql: q, limit: 1000 } })) });
  const exp = useMutation({
    mutationFn: (q: string) => ok(api.POST("/api/questdb/export", { params: { query: { mode: "job" } }, body: { sql: q, format: "csv" } })) as Promise<{ job_id: string }>,
    onSuccess: (r) => setJobId(r.job_id),
  });
  const job = useQuery({
    queryKey: ["job", jobId], enabled: !!jobId,
    queryFn: () => ok(api.GET("/api/jobs/{job_id}", { params: { path: { job_id: jobId! } } })),
    refetchInterval: (q) => (q.state.data && !["PENDING", "RUNNING"].includes(q.state.data.status) ? false : 700),
  });
  function keys(e: KeyboardEvent) {
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); run.mutate(sql); }
  }
  const url = (job.data?.result as { url?: string } | null)?.url;
  return (
    <>
      <h1>SQL console</h1>
      <Section title="Query (read-only)">
        <label htmlFor="sql" className="sr-only">SQL</label>
        <textarea id="sql" className="editor" value={sql} onChange={(e) => setSql(e.target.value)} onKeyDown={keys} spellCheck={false} rows={6} />
        <div className="filters">
          <button onClick={() => run.mutate(sql)} disabled={run.isPending}>Run (Ctrl+Enter)</button>
          <button onClick={() => exp.mutate(sql)} disabled={exp.isPending}>Export CSV</button>
          {job.data && <span data-testid="export-job">export <Status value={job.data.status} /> {job.data.progress.toLocaleString()} rows {url && <a href={url} data-testid="export-link">download</a>} {job.data.error && <span className="neg">{job.data.error}</span>}</span>}
        </div>
        <ErrorBox error={run.error || exp.error} />
      </Section>
      {run.data && (
        <Section title={`${run.data.count} rows${run.data.truncated ? ` (truncated at ${run.data.limit})` : ""}`}>
          <div className="scroll tall"><table data-testid="sql-results">
            <thead><tr>{run.data.columns.map((c, i) => <th key={i}>{c.name}<br /><span className="muted small">{c.type}</span></th>)}</tr></thead>
            <tbody>{(run.data.rows as unknown[][]).map((row, i) => <tr key={i}>{row.map((v, j) => <td key={j}>{fmt(v)}</td>)}</tr>)}</tbody>
          </table></div>
        </Section>
      )}
    </>
  );
}
