import { useMemo, useState } from "react";
import { useQueries, useQuery } from "@tanstack/react-query";
import { Link, useSearchParams } from "react-router-dom";
import { api, headers, ok, type Schemas } from "../api/client";
import { LineChart } from "../components/LineChart";
import { ErrorBox, Section } from "../components/ui";
import { fmt, foldMetricKeys, foldMetricSeries } from "../shape";

export default function Compare() {
  const ids = (useSearchParams()[0].get("ids") ?? "").split(",").filter(Boolean);
  const [onlyDiff, setOnlyDiff] = useState(false);
  const cmp = useQuery({ queryKey: ["compare", ids], enabled: ids.length >= 2, queryFn: () => ok(api.GET("/api/runs/compare", { params: { query: { run_ids: ids.join(",") } } })) as Promise<Schemas["RunComparison"]> });
  const details = useQueries({ queries: ids.map((id) => ({ queryKey: ["run", id], queryFn: () => ok(api.GET("/api/runs/{run_id}", { params: { path: { run_id: id } } })) as Promise<Schemas["RunDetail"]> })) });
  const runs = details.map((d) => d.data).filter((d): d is Schemas["RunDetail"] => !!d);
  const keys = useMemo(() => foldMetricKeys(runs), [runs.length]); // eslint-disable-line react-hooks/exhaustive-deps
  const [metric, setMetric] = useState<string | null>(null);
  const m = metric ?? keys[0];
  const series = useMemo(() => (m && runs.length === ids.length ? foldMetricSeries(runs, m) : null), [m, runs.length, ids.length]); // eslint-disable-line react-hooks/exhaustive-deps
  async function csv() {
    const r = await fetch(`/api/runs/compare?format=csv&run_ids=${ids.join(",")}`, { headers: headers() });
    const url = URL.createObjectURL(await r.blob());
    const a = document.createElement("a");
    a.href = url; a.download = "compare.csv"; a.click();
    URL.revokeObjectURL(url);
  }
  if (ids.length < 2) return <p>Pick at least two runs on the <Link to="/runs">Runs</Link> page.</p>;
  const rows = (cmp.data?.rows ?? []).filter((r) => !onlyDiff || r.differs);
  return (
    <>
      <h1>Compare {ids.length} runs</h1>
      <ErrorBox error={cmp.error} />
      {m && series && (
        <Section title="Per-fold metric" actions={<label>Metric <select value={m} onChange={(e) => setMetric(e.target.value)}>{keys.map((k) => <option key={k}>{k}</option>)}</select></label>}>
          <LineChart x={series.x} ys={series.ys} names={ids.map((i) => i.slice(0, 8))} label={`${m} per fold`} points />
        </Section>
      )}
      {cmp.data && (
        <Section title={`${cmp.data.differing} of ${cmp.data.total} keys differ`} actions={<span><label><input type="checkbox" checked={onlyDiff} onChange={(e) => setOnlyDiff(e.target.checked)} /> only differing</label> <button onClick={csv}>CSV</button></span>}>
          <div className="scroll">
            <table data-testid="compare-table">
              <thead><tr><th>Section</th><th>Key</th>{cmp.data.runs.map((r) => <th key={r.run_id}><Link to={`/runs/${r.run_id}`} className="mono small">{r.run_id.slice(0, 8)}</Link></th>)}</tr></thead>
              <tbody>{rows.map((r) => (
                <tr key={`${r.section}.${r.key}`} className={r.differs ? "differs" : ""}>
                  <td className="small muted">{r.section}</td><td>{r.key}{r.differs && <span className="sr-only"> (differs)</span>}</td>
                  {r.values.map((v, i) => <td key={i} className="num">{fmt(v)}</td>)}
                </tr>
              ))}</tbody>
            </table>
          </div>
        </Section>
      )}
    </>
  );
}
