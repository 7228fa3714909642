// TradingView lightweight-charts: candles + volume, optional overlays (lines on the price scale or on
// the left scale), shading bars (fold windows) and markers (trades). onRange reports the visible time
// range after zoom/pan (debounced) so the page can re-query it at a finer resolution.
import { useEffect, useRef } from "react";
import {
  CandlestickSeries, ColorType, HistogramSeries, LineSeries, createChart, createSeriesMarkers,
  type IChartApi, type ISeriesApi, type SeriesMarker, type Time, type UTCTimestamp,
} from "lightweight-charts";
import type { Bar, Candle } from "../shape";

export interface Overlay { name: string; data: Bar[]; color: string; width?: 1 | 2 | 3; scale?: "right" | "left"; levels?: { value: number; title: string }[] }
export interface Marker { time: number; position: "aboveBar" | "belowBar"; color: string; shape: "arrowUp" | "arrowDown" | "circle"; text?: string }

const COLORS = ["#2962ff", "#ff6d00", "#ab47bc", "#00897b", "#c2185b", "#5d4037"];
export const overlayColor = (i: number) => COLORS[i % COLORS.length];

const t = (x: number) => x as UTCTimestamp;

export function PriceChart(props: {
  candles: Candle[]; volume?: Bar[]; overlays?: Overlay[]; shading?: Bar[]; markers?: Marker[];
  height?: number; onRange?: (from: number, to: number) => void; label?: string;
}) {
  const el = useRef<HTMLDivElement>(null);
  const chart = useRef<IChartApi | null>(null);
  const series = useRef<ISeriesApi<"Candlestick"> | null>(null);
  const extra = useRef<ISeriesApi<"Histogram" | "Line">[]>([]);
  const fitted = useRef(false);
  const onRange = useRef(props.onRange);
  onRange.current = props.onRange;

  useEffect(() => {
    if (!el.current) return;
    const c = createChart(el.current, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: "#ffffff" }, textColor: "#333", attributionLogo: false },
      grid: { vertLines: { color: "#f0f0f0" }, horzLines: { color: "#f0f0f0" } },
      timeScale: { timeVisible: true, secondsVisible: false },
      leftPriceScale: { visible: false },
    });
    chart.current = c;
    series.current = c.addSeries(CandlestickSeries, {
      upColor: "#26a69a", downColor: "#ef5350", borderVisible: false, wickUpColor: "#26a69a", wickDownColor: "#ef5350",
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    c.timeScale().subscribeVisibleTimeRangeChange((r) => {
      if (!r || !onRange.current) return;
      clearTimeout(timer);
      timer = setTimeout(() => onRange.current?.(Number(r.from), Number(r.to)), 350);
    });
    return () => { clearTimeout(timer); c.remove(); chart.current = null; };
  }, []);

  useEffect(() => {
    const c = chart.current, s = series.current;
    if (!c || !s) return;
    const range = c.timeScale().getVisibleRange();
    s.setData(props.candles.map((x) => ({ ...x, time: t(x.time) })));
    extra.current.forEach((x) => c.removeSeries(x));
    extra.current = [];
    if (props.shading?.length) {
      const h = c.addSeries(HistogramSeries, { priceScaleId: "shade", priceLineVisible: false, lastValueVisible: false });
      h.priceScale().applyOptions({ scaleMargins: { top: 0, bottom: 0 } });
      h.setData(props.shading.map((b) => ({ ...b, time: t(b.time) })));
      extra.current.push(h);
    }
    if (props.volume?.length) {
      const v = c.addSeries(HistogramSeries, { priceScaleId: "vol", priceFormat: { type: "volume" }, priceLineVisible: false, lastValueVisible: false });
      v.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
      v.setData(props.volume.map((b) => ({ ...b, time: t(b.time) })));
      extra.current.push(v);
    }
    let left = false;
    for (const o of props.overlays ?? []) {
      left ||= o.scale === "left";
      const l = c.addSeries(LineSeries, { color: o.color, lineWidth: o.width ?? 2, priceScaleId: o.scale ?? "right", title: o.name, priceLineVisible: false });
      l.setData(o.data.map((b) => ({ ...b, time: t(b.time) })));
      for (const lv of o.levels ?? []) l.createPriceLine({ price: lv.value, color: "#9e9e9e", lineStyle: 2, lineWidth: 1, axisLabelVisible: true, title: lv.title });
      extra.current.push(l);
    }
    c.applyOptions({ leftPriceScale: { visible: left } });
    createSeriesMarkers(s, (props.markers ?? []).map((m) => ({ ...m, time: t(m.time) }) as SeriesMarker<Time>));
    if (!fitted.current && props.candles.length) { c.timeScale().fitContent(); fitted.current = true; }
    else if (range) c.timeScale().setVisibleRange(range);
  }, [props.candles, props.volume, props.overlays, props.shading, props.markers]);

  return <div ref={el} className="chart" style={{ height: props.height ?? 420 }} role="img" aria-label={props.label ?? "price chart"} data-testid="price-chart" data-candles={props.candles.length} />;
}
