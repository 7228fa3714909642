import { useMemo, useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { Link, useParams } from "react-router-dom";
import { api, ok, type Schemas } from "../api/client";
import { PriceChart, type Overlay } from "../components/PriceChart";
import { Empty, ErrorBox, Section, Status } from "../components/ui";
import { downloadCsv } from "../download";
import { fmt, fmtTime, foldShading, thresholdLevels, toCandles, toLine, type Row } from "../shape";

function KV({ obj }: { obj: Record<string, unknown> }) {
  const entries = Object.entries(obj ?? {});
  if (!entries.length) return <Empty>none</Empty>;
  return <dl className="kv">{entries.map(([k, v]) => <div key={k}><dt>{k}</dt><dd>{fmt(v)}</dd></div>)}</dl>;
}

export default function Run() {
  const id = useParams().id!;
  const [note, setNote] = useState<string | null>(null);
  const run = useQuery({ queryKey: ["run", id], queryFn: () => ok(api.GET("/api/runs/{run_id}", { params: { path: { run_id: id } } })) as Promise<Schemas["RunDetail"]> });
  const r = run.data;
  const span = useMemo(() => {
    const ts = (r?.folds ?? []).flatMap((f) => [f.test_start, f.test_end]).filter((x): x is number => typeof x === "number");
    return ts.length ? { from: Math.min(...ts), to: Math.max(...ts) } : null;
  }, [r]);
  const preds = useQuery({
    queryKey: ["preds", id], enabled: !!r && r.prediction_rows > 0,
    queryFn: async () => ((await ok(api.GET("/api/runs/{run_id}/predictions", { params: { path: { run_id: id }, query: { max_points: 2000, limit: 10000 } } }))) as { predictions?: Row[] }).predictions ?? [],
  });
  const bars = useQuery({
    queryKey: ["ohlcv", r?.dataset_id, span], enabled: !!r && !!span,
    queryFn: async () => ((await ok(api.GET("/api/datasets/{dataset_id}/ohlcv", { params: { path: { dataset_id: r!.dataset_id }, query: { from: span!.from, to: span!.to, max_points: 2000, limit: 10000 } } }))) as { rows?: Row[] }).rows ?? [],
  });
  const candles = useMemo(() => toCandles(bars.data ?? []), [bars.data]);
  const shading = useMemo(() => foldShading(candles.map((c) => c.time), r?.folds ?? []), [candles, r]);
  const overlays: Overlay[] = useMemo(() => {
    if (!preds.data || !r) return [];
    const levels = thresholdLevels(r.folds).filter((l) => l.value > 0 && l.value < 1).map((l) => ({ value: l.value, title: `${l.key} ${l.value}` }));
    return [
      { name: "prediction", data: toLine(preds.data, "prediction"), color: "#2962ff", scale: "left", levels },
      { name: r.target_column || "target", data: toLine(preds.data, "target"), color: "rgba(255,109,0,0.55)", scale: "left", width: 1 },
    ];
  }, [preds.data, r]);
  async function csv() {
    setNote(null);
    const res = await downloadCsv(`/api/runs/${id}/predictions?format=csv`, `${r?.prediction_measurement ?? id}.csv`);
    if (res.job) setNote(`The file is large: export job ${res.job} is writing it (see Jobs).`);
    if (res.error) setNote(res.error);
  }
  if (run.error) return <ErrorBox error={run.error} />;
  if (!r) return <p className="muted">Loading…</p>;
  return (
    <>
      <div className="title-row">
        <h1>Run <span className="mono">{r.run_id.slice(0, 8)}</span> <Status value={r.status} /></h1>
        <button onClick={csv} disabled={!r.prediction_rows}>Predictions CSV</button>
      </div>
      {note && <p className="note" role="status">{note}</p>}
      <p className="muted">{r.prediction_measurement} on <Link to={`/datasets/${r.dataset_slug}`}>{r.dataset_slug}</Link> · target {r.target_column} · {r.prediction_rows.toLocaleString()} predictions · {r.fold_count} folds{r.dataset_changed ? " · the dataset changed since this run" : ""}</p>
      {r.error && <div className="error" role="alert">{r.error}</div>}
      <Section title="Predictions over the price" actions={<span className="muted small">test windows shaded per fold; threshold lines on the left scale</span>}>
        <ErrorBox error={preds.error || bars.error} />
        {candles.length > 0 ? <PriceChart candles={candles} overlays={overlays} shading={shading} label="predictions and target over the price" /> : <Empty>{bars.isLoading || preds.isLoading ? "Loading…" : "No bars in the run's test windows."}</Empty>}
      </Section>
      <Section title="Folds">
        <div className="scroll">
          <table data-testid="folds-table">
            <thead><tr><th>Fold</th><th>Train</th><th>Test</th><th className="num">Train n</th><th className="num">Test n</th><th>Thresholds</th><th>Metrics</th></tr></thead>
            <tbody>{r.folds.map((f) => (
              <tr key={f.fold_number}>
                <td>{f.fold_number}</td><td className="small">{fmtTime(f.train_start)} → {fmtTime(f.train_end)}</td><td className="small">{fmtTime(f.test_start)} → {fmtTime(f.test_end)}</td>
                <td className="num">{fmt(f.samples_train)}</td><td className="num">{fmt(f.samples_test)}</td>
                <td className="small">{Object.entries(f.thresholds ?? {}).map(([k, v]) => `${k}=${fmt(v)}`).join(", ")}</td>
                <td className="small">{Object.entries(f.metrics ?? {}).map(([k, v]) => `${k}=${fmt(v)}`).join(", ")}</td>
              </tr>
            ))}</tbody>
          </table>
        </div>
      </Section>
      <div className="grid3">
        <Section title="Hyperparameters"><KV obj={r.hyperparameters} /></Section>
        <Section title="Walk-forward config"><KV obj={r.walk_config} /></Section>
        <Section title="Summary metrics"><KV obj={r.summary_metrics} /></Section>
      </div>
    </>
  );
}
