// Runs: a ranked, filtered table whose metric/hyperparameter columns the user picks (values come
// from GET /api/runs/compare for the page's runs: one request for the whole page).
import { useMemo, useState, type FormEvent } from "react";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Link, useNavigate } from "react-router-dom";
import { api, ok, type Schemas } from "../api/client";
import { Empty, ErrorBox, Pager, Status } from "../components/ui";
import { fmt } from "../shape";

const LIMIT = 50;
type Row = Schemas["ComparisonRow"];
const SORTABLE = new Set(["summary_metrics", "hyperparameters", "walk_config"]);

export function columnKey(r: Pick<Row, "section" | "key">): string {
  return `${r.section}.${r.key}`;
}

export default function Runs() {
  const nav = useNavigate();
  const [draft, setDraft] = useState({ filter: "", dataset: "" });
  const [applied, setApplied] = useState({ filter: "", dataset: "" });
  const [sort, setSort] = useState("-created_at");
  const [offset, setOffset] = useState(0);
  const [picked, setPicked] = useState<string[] | null>(null);
  const [selected, setSelected] = useState<string[]>([]);
  const list = useQuery({
    queryKey: ["runs", applied, sort, offset],
    queryFn: () => ok(api.GET("/api/runs", { params: { query: { filter: applied.filter || undefined, dataset_id: applied.dataset || undefined, sort, limit: LIMIT, offset } } })),
    placeholderData: keepPreviousData,
  });
  const ids = useMemo(() => list.data?.runs.map((r) => r.run_id) ?? [], [list.data]);
  const table = useQuery({
    queryKey: ["runs-columns", ids], enabled: ids.length >= 2,
    queryFn: () => ok(api.GET("/api/runs/compare", { params: { query: { run_ids: ids.join(",") } } })) as Promise<Schemas["RunComparison"]>,
  });
  const rows = useMemo(() => (table.data?.rows ?? []).filter((r) => r.section !== "folds"), [table.data]);
  const available = rows.map(columnKey);
  const shown = picked ?? available.filter((k) => k.startsWith("summary_metrics.")).slice(0, 4);
  const valueOf = (runIndex: number, key: string) => rows.find((r) => columnKey(r) === key)?.values[runIndex];
  const runIndex = new Map((table.data?.runs ?? []).map((r, i) => [r.run_id, i]));
  function submit(e: FormEvent) { e.preventDefault(); setApplied(draft); setOffset(0); }
  function sortBy(key: string) { setSort(sort === `-${key}` ? key : `-${key}`); setOffset(0); }
  const arrow = (key: string) => (sort === key ? " ▲" : sort === `-${key}` ? " ▼" : "");
  return (
    <>
      <h1>Runs</h1>
      <form className="filters" onSubmit={submit} role="search">
        <label className="grow">Filter <input value={draft.filter} onChange={(e) => setDraft({ ...draft, filter: e.target.value })} placeholder="summary_metrics.auc > 0.52 and status = 'COMPLETED'" aria-describedby="filter-help" /></label>
        <label>Dataset <input value={draft.dataset} onChange={(e) => setDraft({ ...draft, dataset: e.target.value })} size={14} placeholder="slug or id" /></label>
        <label>Sort <input value={sort} onChange={(e) => setSort(e.target.value)} size={22} /></label>
        <button type="submit">Apply</button>
      </form>
      <p id="filter-help" className="muted small">= != &lt; &lt;= &gt; &gt;=, and/or/not, in (…), like, is null on columns, summary_metrics.*, hyperparameters.*, walk_config.*; sort by any of those (prefix - for descending), or folds.metrics.KEY.mean.</p>
      <ErrorBox error={list.error} />
      {available.length > 0 && (
        <details className="picker">
          <summary>Columns ({shown.length} of {available.length})</summary>
          {available.map((k) => (
            <label key={k}><input type="checkbox" checked={shown.includes(k)} onChange={(e) => setPicked(e.target.checked ? [...shown, k] : shown.filter((x) => x !== k))} /> {k}</label>
          ))}
        </details>
      )}
      <div className="title-row">
        <span className="muted">{selected.length} selected</span>
        <button disabled={selected.length < 2 || selected.length > 50} onClick={() => nav(`/runs/compare?ids=${selected.join(",")}`)}>Compare selected</button>
      </div>
      {list.data?.runs.length === 0 && <Empty>No runs match.</Empty>}
      {!!list.data?.runs.length && (
        <div className="scroll">
          <table data-testid="runs-table">
            <thead><tr>
              <th><span className="sr-only">select</span></th><th><button className="th" onClick={() => sortBy("created_at")}>Run{arrow("created_at")}</button></th><th>Dataset</th><th><button className="th" onClick={() => sortBy("status")}>Status{arrow("status")}</button></th><th className="num">Folds</th>
              {shown.map((k) => <th key={k} className="num">{SORTABLE.has(k.split(".")[0]) ? <button className="th" onClick={() => sortBy(k)}>{k.split(".").slice(1).join(".")}{arrow(k)}</button> : k.split(".").slice(1).join(".")}<br /><span className="muted small">{k.split(".")[0]}</span></th>)}
            </tr></thead>
            <tbody>
              {list.data.runs.map((r) => (
                <tr key={r.run_id}>
                  <td><input type="checkbox" aria-label={`select run ${r.run_id}`} checked={selected.includes(r.run_id)} onChange={(e) => setSelected(e.target.checked ? [...selected, r.run_id] : selected.filter((x) => x !== r.run_id))} /></td>
                  <td><Link to={`/runs/${r.run_id}`} className="mono small">{r.run_id.slice(0, 8)}</Link> <span className="small">{r.prediction_measurement}</span></td>
                  <td>{r.dataset_slug}</td><td><Status value={r.status} /></td><td className="num">{r.fold_count}</td>
                  {shown.map((k) => <td key={k} className="num">{fmt(runIndex.has(r.run_id) ? valueOf(runIndex.get(r.run_id)!, k) : undefined)}</td>)}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {list.data && <Pager offset={offset} limit={LIMIT} total={list.data.total} onChange={setOffset} />}
    </>
  );
}
