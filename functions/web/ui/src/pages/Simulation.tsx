import { useMemo, useState } from "react";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Link, useParams } from "react-router-dom";
import { api, ok, type Schemas } from "../api/client";
import { LineChart } from "../components/LineChart";
import { PriceChart, type Marker } from "../components/PriceChart";
import { Empty, ErrorBox, Pager, Section, Status } from "../components/ui";
import { fmt, fmtTime, histogram, toCandles, type Row } from "../shape";

const PAGE = 50;

export default function Simulation() {
  const id = useParams().id!;
  const [offset, setOffset] = useState(0);
  const sim = useQuery({ queryKey: ["sim", id], queryFn: () => ok(api.GET("/api/simulations/{simulation_id}", { params: { path: { simulation_id: id } } })) });
  const done = sim.data?.status === "COMPLETED";
  const trades = useQuery({
    queryKey: ["trades", id, offset], enabled: done, placeholderData: keepPreviousData,
    queryFn: () => ok(api.GET("/api/simulations/{simulation_id}/trades", { params: { path: { simulation_id: id }, query: { limit: PAGE, offset } } })) as Promise<Schemas["TradeList"]>,
  });
  // Markers and the PnL histogram use up to 10,000 trades (one page of the API).
  const all = useQuery({
    queryKey: ["trades-all", id], enabled: done,
    queryFn: () => ok(api.GET("/api/simulations/{simulation_id}/trades", { params: { path: { simulation_id: id }, query: { limit: 10000 } } })) as Promise<Schemas["TradeList"]>,
  });
  const equity = useQuery({
    queryKey: ["equity", id], enabled: done,
    queryFn: () => ok(api.GET("/api/simulations/{simulation_id}/equity", { params: { path: { simulation_id: id }, query: { max_points: 2000, limit: 10000 } } })) as Promise<Schemas["EquityCurve"]>,
  });
  const span = useMemo(() => {
    const ts = (all.data?.trades ?? []).map((t) => t.bar_timestamp);
    return ts.length ? { from: Math.min(...ts), to: Math.max(...ts) } : null;
  }, [all.data]);
  const bars = useQuery({
    queryKey: ["ohlcv", sim.data?.dataset_id, span], enabled: !!span,
    queryFn: async () => ((await ok(api.GET("/api/datasets/{dataset_id}/ohlcv", { params: { path: { dataset_id: sim.data!.dataset_id }, query: { from: span!.from, to: span!.to, max_points: 2000, limit: 10000 } } }))) as { rows?: Row[] }).rows ?? [],
  });
  const candles = useMemo(() => toCandles(bars.data ?? []), [bars.data]);
  const markers: Marker[] = useMemo(() => {
    if (!candles.length) return [];
    const times = candles.map((c) => c.time);
    const snap = (t: number) => { let lo = 0, hi = times.length - 1; while (lo < hi) { const m = (lo + hi + 1) >> 1; if (times[m] <= t) lo = m; else hi = m - 1; } return times[lo]; };
    return (all.data?.trades ?? []).slice(0, 2000).map((t) => ({
      time: snap(t.bar_timestamp), position: t.side === "long" ? "belowBar" : "aboveBar", color: (t.pnl ?? 0) >= 0 ? "#26a69a" : "#ef5350",
      shape: t.side === "long" ? "arrowUp" : "arrowDown",
    }));
  }, [all.data, candles]);
  const eq = useMemo(() => {
    const cols = equity.data?.columns ?? [];
    const pts = (equity.data?.points ?? []) as unknown[];
    const get = (p: unknown, k: string) => (Array.isArray(p) ? p[cols.indexOf(k)] : (p as Record<string, unknown>)[k]) as number;
    const key = cols.find((c) => c === "equity" || c === "cumulative_pnl") ?? cols.find((c) => c !== "timestamp" && c !== "bar_timestamp") ?? "equity";
    const tk = cols.includes("timestamp") ? "timestamp" : "bar_timestamp";
    return { x: pts.map((p) => get(p, tk)), ys: [pts.map((p) => get(p, key))], name: key };
  }, [equity.data]);
  const hist = useMemo(() => histogram((all.data?.trades ?? []).map((t) => t.pnl ?? NaN)), [all.data]);
  const maxCount = Math.max(1, ...hist.map((h) => h.count));
  if (sim.error) return <ErrorBox error={sim.error} />;
  if (!sim.data) return <p className="muted">Loading…</p>;
  const s = sim.data;
  return (
    <>
      <h1>{s.name || "Simulation"} <Status value={s.status} /></h1>
      <p className="muted">on <Link to={`/datasets/${s.dataset_slug}`}>{s.dataset_slug}</Link>{s.run_id ? <> · run <Link to={`/runs/${s.run_id}`} className="mono">{s.run_id.slice(0, 8)}</Link></> : null} · {s.trade_count.toLocaleString()} trades · config {fmt(s.config)}</p>
      {s.error && <div className="error" role="alert">{s.error}</div>}
      {!done && <Empty>The simulation is {s.status}; trades and equity appear when it is COMPLETED.</Empty>}
      <Section title="Equity">
        <ErrorBox error={equity.error} />
        {eq.x.length > 1 ? <LineChart x={eq.x} ys={eq.ys} names={[eq.name]} time label="equity curve" /> : <Empty>{equity.isLoading ? "Loading…" : "No equity points."}</Empty>}
      </Section>
      <Section title="Trades on the price">
        <ErrorBox error={bars.error} />
        {candles.length ? <PriceChart candles={candles} markers={markers} label="trades on the price" height={360} /> : <Empty>{bars.isLoading ? "Loading…" : "No bars for these trades."}</Empty>}
      </Section>
      <div className="grid2">
        <Section title="PnL per trade (histogram)">
          {hist.length ? (
            <div className="hist" role="img" aria-label="histogram of trade PnL">
              {hist.map((h, i) => <div key={i} className="hbar" title={`${fmt(h.lo)} … ${fmt(h.hi)}: ${h.count}`}><span className={h.lo >= 0 ? "pos" : "neg"} ref={(el) => { if (el) el.style.height = `${(100 * h.count) / maxCount}%`; }} /></div>)}
            </div>
          ) : <Empty>No trades.</Empty>}
          {hist.length > 0 && <p className="muted small">{fmt(hist[0].lo)} … {fmt(hist[hist.length - 1].hi)}</p>}
        </Section>
        <Section title="Buckets">
          <div className="scroll"><table><thead><tr><th>Bucket</th><th className="num">Trades</th><th className="num">Win rate</th><th className="num">Total PnL</th><th className="num">Mean PnL</th></tr></thead>
            <tbody>{s.buckets.map((b) => <tr key={`${b.bucket_type}:${b.bucket_key}`}><td>{b.bucket_type}: {b.bucket_key}</td><td className="num">{b.trade_count}</td><td className="num">{fmt(b.win_rate)}</td><td className="num">{fmt(b.total_pnl)}</td><td className="num">{fmt(b.mean_pnl)}</td></tr>)}</tbody>
          </table></div>
        </Section>
      </div>
      <Section title="Trades">
        <ErrorBox error={trades.error} />
        <div className="scroll"><table><thead><tr><th className="num">#</th><th>Bar</th><th>Side</th><th className="num">Entry</th><th className="num">Exit</th><th className="num">Qty</th><th className="num">PnL</th><th className="num">Return %</th></tr></thead>
          <tbody>{trades.data?.trades.map((t) => <tr key={t.trade_index}><td className="num">{t.trade_index}</td><td className="small">{fmtTime(t.bar_timestamp)}</td><td>{t.side}</td><td className="num">{fmt(t.entry_price)}</td><td className="num">{fmt(t.exit_price)}</td><td className="num">{fmt(t.quantity)}</td><td className={`num ${(t.pnl ?? 0) >= 0 ? "pos" : "neg"}`}>{fmt(t.pnl)}</td><td className="num">{fmt(t.return_pct)}</td></tr>)}</tbody>
        </table></div>
        {trades.data && <Pager offset={offset} limit={PAGE} total={trades.data.total} shown={trades.data.trades.length} onChange={setOffset} />}
      </Section>
    </>
  );
}
