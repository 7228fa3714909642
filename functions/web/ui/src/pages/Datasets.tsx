import { useState } from "react";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Link } from "react-router-dom";
import { api, ok, type Schemas } from "../api/client";
import { Empty, ErrorBox, Pager } from "../components/ui";
import { fmtTime } from "../shape";

type Dataset = Schemas["Dataset"];
const SORTS = ["-created_at", "created_at", "dataset_slug", "-dataset_slug", "symbol", "granularity", "-updated_at"] as const;
const LIMIT = 25;

export function health(d: Dataset): { label: string; cls: string; title: string } {
  const tables = [d.questdb_state?.ohlcv, d.questdb_state?.indicator].filter(Boolean) as NonNullable<NonNullable<Dataset["questdb_state"]>["ohlcv"]>[];
  if (!d.questdb_state) return { label: "unknown", cls: "warn", title: "QuestDB state unavailable" };
  const err = tables.find((t) => t.error);
  if (err) return { label: "error", cls: "bad", title: String(err.error) };
  if (tables.some((t) => t.suspended)) return { label: "suspended", cls: "bad", title: "a WAL table is suspended" };
  if (tables.some((t) => (t.wal_pending_rows ?? 0) > 0)) return { label: "catching up", cls: "warn", title: "WAL rows pending" };
  if (!tables.some((t) => t.exists)) return { label: "empty", cls: "muted", title: "no QuestDB table yet" };
  return { label: "ok", cls: "good", title: "QuestDB tables present" };
}

export function Datasets() {
  const [search, setSearch] = useState("");
  const [symbol, setSymbol] = useState("");
  const [granularity, setGranularity] = useState("");
  const [sort, setSort] = useState<(typeof SORTS)[number]>("-created_at");
  const [offset, setOffset] = useState(0);
  const q = useQuery({
    queryKey: ["datasets", search, symbol, granularity, sort, offset],
    queryFn: () => ok(api.GET("/api/datasets", { params: { query: { search: search || undefined, symbol: symbol || undefined, granularity: granularity || undefined, sort, limit: LIMIT, offset } } })),
    placeholderData: keepPreviousData,
  });
  const reset = () => setOffset(0);
  return (
    <>
      <h1>Datasets</h1>
      <form className="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <label>Search <input value={search} onChange={(e) => { setSearch(e.target.value); reset(); }} placeholder="slug, symbol…" /></label>
        <label>Symbol <input value={symbol} onChange={(e) => { setSymbol(e.target.value); reset(); }} size={8} /></label>
        <label>Granularity <input value={granularity} onChange={(e) => { setGranularity(e.target.value); reset(); }} size={5} placeholder="1h" /></label>
        <label>Sort <select value={sort} onChange={(e) => setSort(e.target.value as typeof sort)}>{SORTS.map((s) => <option key={s}>{s}</option>)}</select></label>
      </form>
      <ErrorBox error={q.error} />
      {q.data && q.data.datasets.length === 0 && <Empty>No datasets match. Create one with <code>stage1 datasets create</code> or <code>POST /api/datasets</code>.</Empty>}
      {q.data && q.data.datasets.length > 0 && (
        <div className="scroll">
          <table>
            <thead><tr><th>Dataset</th><th>Symbol</th><th className="wide-only">Gran.</th><th className="num">OHLCV rows</th><th className="wide-only">Bounds</th><th className="num wide-only">Indicator rows</th><th className="num wide-only">Runs</th><th className="num wide-only">Sims</th><th>QuestDB</th></tr></thead>
            <tbody>
              {q.data.datasets.map((d) => {
                const h = health(d);
                return (
                  <tr key={d.dataset_id}>
                    <td className="slug"><Link to={`/datasets/${d.dataset_slug}`}>{d.dataset_slug}</Link></td>
                    <td>{d.symbol}<span className="narrow-only muted small"> · {d.granularity}</span></td><td className="wide-only">{d.granularity}</td>
                    <td className="num">{d.ohlcv_rows.toLocaleString()}</td>
                    <td className="small nowrap wide-only">{d.ohlcv_first_ts ? `${fmtTime(d.ohlcv_first_ts)} → ${fmtTime(d.ohlcv_last_ts)}` : "—"}</td>
                    <td className="num wide-only">{d.indicator_rows.toLocaleString()}</td>
                    <td className="num wide-only">{d.related_runs}</td><td className="num wide-only">{d.related_simulations}</td>
                    <td><span className={`badge ${h.cls}`} title={h.title}>{h.label}</span></td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {q.data && <Pager offset={offset} limit={LIMIT} total={q.data.total} shown={q.data.datasets.length} onChange={setOffset} />}
    </>
  );
}
