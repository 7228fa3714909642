import { useCallback, useMemo, useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { Link, useParams } from "react-router-dom";
import { api, ok } from "../api/client";
import { PriceChart, overlayColor, type Overlay } from "../components/PriceChart";
import { Empty, ErrorBox, Section, Status } from "../components/ui";
import { fmt, fmtTime, mergeWindow, rangeQuery, toCandles, toLine, toVolume, type Row } from "../shape";

const POINTS = 1500;

export default function Dataset() {
  const id = useParams().id!;
  const ds = useQuery({ queryKey: ["dataset", id], queryFn: () => ok(api.GET("/api/datasets/{dataset_id}", { params: { path: { dataset_id: id } } })) });
  const [win, setWin] = useState<{ from: number; to: number } | null>(null);
  const [picked, setPicked] = useState<string[]>([]);
  const hasBars = (ds.data?.ohlcv_rows ?? 0) > 0;
  const series = (kind: "ohlcv" | "indicators", range: { from: number; to: number } | null) => async () => {
    const path = kind === "ohlcv" ? "/api/datasets/{dataset_id}/ohlcv" : "/api/datasets/{dataset_id}/indicators";
    const r = await ok(api.GET(path, { params: { path: { dataset_id: id }, query: { max_points: POINTS, limit: 10000, from: range?.from, to: range?.to } } }));
    return ((r as { rows?: Row[] }).rows ?? []) as Row[];
  };
  const overview = useQuery({ queryKey: ["ohlcv", id, null], queryFn: series("ohlcv", null), enabled: hasBars });
  const detail = useQuery({ queryKey: ["ohlcv", id, win], queryFn: series("ohlcv", win), enabled: hasBars && win !== null });
  const hasInd = (ds.data?.indicator_rows ?? 0) > 0;
  const ind = useQuery({ queryKey: ["ind", id, win], queryFn: series("indicators", win), enabled: hasInd && picked.length > 0 });
  const runs = useQuery({ queryKey: ["dsruns", id], queryFn: () => ok(api.GET("/api/datasets/{dataset_id}/runs", { params: { path: { dataset_id: id }, query: { limit: 20 } } })) });
  const sims = useQuery({ queryKey: ["dssims", id], queryFn: () => ok(api.GET("/api/datasets/{dataset_id}/simulations", { params: { path: { dataset_id: id }, query: { limit: 20 } } })) });

  const candles = useMemo(() => mergeWindow(toCandles(overview.data ?? []), toCandles(detail.data ?? [])), [overview.data, detail.data]);
  const volume = useMemo(() => mergeWindow(toVolume(overview.data ?? []), toVolume(detail.data ?? [])), [overview.data, detail.data]);
  const indMeta = useQuery({
    queryKey: ["indcols", id], enabled: hasInd,
    queryFn: async () => {
      const r = await ok(api.GET("/api/datasets/{dataset_id}/indicators", { params: { path: { dataset_id: id }, query: { limit: 1 } } }));
      return ((r as { columns?: string[] }).columns ?? []).filter((c) => c !== "timestamp");
    },
  });
  const knownInd = indMeta.data ?? [];
  const overlays: Overlay[] = useMemo(() => picked.map((c, i) => ({ name: c, data: toLine(ind.data ?? [], c), color: overlayColor(i), scale: "left" as const })), [picked, ind.data]);
  const onRange = useCallback((from: number, to: number) => {
    const first = candles[0]?.time, last = candles[candles.length - 1]?.time;
    if (first === undefined) return;
    const full = { from: first, to: last };
    if (to - from >= (full.to - full.from) * 0.9) { setWin(null); return; }
    setWin((cur) => rangeQuery(from, to, cur) ?? cur);
  }, [candles]);

  if (ds.error) return <ErrorBox error={ds.error} />;
  if (!ds.data) return <p className="muted">Loading…</p>;
  const d = ds.data;
  return (
    <>
      <div className="title-row">
        <h1>{d.dataset_slug}</h1>
        <Link className="button" to={`/datasets/${d.dataset_slug}/upload`}>Upload a file</Link>
      </div>
      <p className="muted">{d.symbol} · {d.granularity} · {d.ohlcv_rows.toLocaleString()} bars {d.ohlcv_first_ts ? `from ${fmtTime(d.ohlcv_first_ts)} to ${fmtTime(d.ohlcv_last_ts)}` : ""} · version {d.version ?? 0}</p>
      <Section title="Price" actions={detail.isFetching || overview.isFetching ? <span className="muted">loading…</span> : <span className="muted small">{candles.length} candles{win ? " (zoomed: finer bars)" : ""}</span>}>
        {!hasBars && <Empty>No bars yet. <Link to={`/datasets/${d.dataset_slug}/upload`}>Upload an OHLCV file</Link>.</Empty>}
        <ErrorBox error={overview.error || detail.error} />
        {hasBars && <PriceChart candles={candles} volume={volume} overlays={overlays} onRange={onRange} label={`${d.dataset_slug} candles`} />}
        {knownInd.length > 0 && (
          <fieldset className="picker"><legend>Indicator overlays</legend>
            {knownInd.map((c) => (
              <label key={c}><input type="checkbox" checked={picked.includes(c)} onChange={(e) => setPicked(e.target.checked ? [...picked, c] : picked.filter((x) => x !== c))} /> {c}</label>
            ))}
          </fieldset>
        )}
      </Section>
      <div className="grid2">
        <Section title={`Runs (${runs.data?.total ?? 0})`}>
          <ErrorBox error={runs.error} />
          {runs.data?.runs.length === 0 && <Empty>No runs on this dataset.</Empty>}
          <ul className="list">{runs.data?.runs.map((r) => <li key={r.run_id}><Link to={`/runs/${r.run_id}`}>{r.prediction_measurement}</Link> <Status value={r.status} /> <span className="muted small">{r.fold_count} folds</span></li>)}</ul>
        </Section>
        <Section title={`Simulations (${sims.data?.total ?? 0})`}>
          <ErrorBox error={sims.error} />
          {sims.data?.simulations.length === 0 && <Empty>No simulations on this dataset.</Empty>}
          <ul className="list">{sims.data?.simulations.map((s) => <li key={s.simulation_id}><Link to={`/simulations/${s.simulation_id}`}>{s.name || s.simulation_id}</Link> <Status value={s.status} /> <span className="muted small">{s.trade_count} trades</span></li>)}</ul>
        </Section>
      </div>
      <Section title="Versions">
        {!d.versions?.length && <Empty>No recorded versions yet (a version is added when an import changes the data).</Empty>}
        {!!d.versions?.length && (
          <div className="scroll"><table><thead><tr><th>Version</th><th>When</th><th>Kind</th><th>Fingerprint</th><th>Job</th></tr></thead>
            <tbody>{d.versions.map((v) => <tr key={v.version}><td>{v.version}</td><td className="small">{v.created_at}</td><td>{v.kind}</td><td className="mono small">{fmt(v.fingerprint).slice(0, 16)}</td><td className="mono small">{v.job_id ?? "—"}</td></tr>)}</tbody>
          </table></div>
        )}
      </Section>
    </>
  );
}
