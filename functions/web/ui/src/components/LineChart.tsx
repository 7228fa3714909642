// uPlot for dense lines (equity, per-fold metrics).
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

const COLORS = ["#2962ff", "#ff6d00", "#ab47bc", "#00897b", "#c2185b", "#5d4037"];

export function LineChart(props: { x: number[]; ys: (number | null)[][]; names: string[]; time?: boolean; height?: number; label: string; points?: boolean }) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const node = el.current;
    if (!node) return;
    const width = Math.max(280, node.clientWidth);
    const plot = new uPlot(
      {
        width, height: props.height ?? 260,
        scales: { x: { time: props.time ?? false } },
        series: [{}, ...props.names.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length], width: 2, points: { show: props.points ?? false } }))],
        axes: [props.time ? {} : { incrs: [1, 2, 5, 10, 20, 50, 100] }, {}],
      },
      [props.x, ...props.ys] as uPlot.AlignedData,
      node,
    );
    const ro = new ResizeObserver(() => plot.setSize({ width: Math.max(280, node.clientWidth), height: props.height ?? 260 }));
    ro.observe(node);
    return () => { ro.disconnect(); plot.destroy(); };
  }, [props.x, props.ys, props.names, props.time, props.height, props.points]);
  return <div ref={el} className="uplot-wrap" role="img" aria-label={props.label} data-testid="line-chart" />;
}
