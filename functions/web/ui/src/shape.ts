// Data shaping: API rows -> chart series. Pure functions (unit-tested in shape.test.ts).

export type Row = Record<string, unknown>;
export interface Candle { time: number; open: number; high: number; low: number; close: number }
export interface Bar { time: number; value: number; color?: string }
export interface Fold {
  fold_number: number;
  train_start?: number | null; train_end?: number | null;
  test_start?: number | null; test_end?: number | null;
  thresholds?: Record<string, unknown>; metrics?: Record<string, unknown>;
}

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** OHLCV rows (unix seconds) -> ascending, de-duplicated candles; rows missing a price are dropped. */
export function toCandles(rows: Row[]): Candle[] {
  const out: Candle[] = [];
  for (const r of rows) {
    const time = num(r.timestamp), open = num(r.open), high = num(r.high), low = num(r.low), close = num(r.close);
    if (time === null || open === null || high === null || low === null || close === null) continue;
    out.push({ time, open, high, low, close });
  }
  return sortUnique(out);
}

/** Volume bars coloured by the candle's direction. */
export function toVolume(rows: Row[]): Bar[] {
  const out: Bar[] = [];
  for (const r of rows) {
    const time = num(r.timestamp), value = num(r.volume);
    if (time === null || value === null) continue;
    const up = (num(r.close) ?? 0) >= (num(r.open) ?? 0);
    out.push({ time, value, color: up ? "rgba(38,166,154,0.5)" : "rgba(239,83,80,0.5)" });
  }
  return sortUnique(out);
}

/** One numeric column as a line (nulls skipped). */
export function toLine(rows: Row[], column: string, timeKey = "timestamp"): Bar[] {
  const out: Bar[] = [];
  for (const r of rows) {
    const time = num(r[timeKey]), value = num(r[column]);
    if (time !== null && value !== null) out.push({ time, value });
  }
  return sortUnique(out);
}

function sortUnique<T extends { time: number }>(items: T[]): T[] {
  items.sort((a, b) => a.time - b.time);
  return items.filter((x, i) => i === 0 || x.time !== items[i - 1].time);
}

/** Merge a detailed window into an overview: the window's bars replace the overview's inside it. */
export function mergeWindow<T extends { time: number }>(overview: T[], detail: T[]): T[] {
  if (detail.length === 0) return overview;
  const lo = detail[0].time, hi = detail[detail.length - 1].time;
  return [...overview.filter((x) => x.time < lo), ...detail, ...overview.filter((x) => x.time > hi)];
}

/** Fold test windows as shading bars: one bar per candle time inside a fold's test window, with the
 * fold's colour (alternating so neighbours differ); times outside every window get no bar. */
export function foldShading(times: number[], folds: Fold[], palette = ["rgba(33,150,243,0.12)", "rgba(255,152,0,0.12)"]): Bar[] {
  const windows = folds
    .filter((f) => f.test_start != null && f.test_end != null)
    .map((f) => ({ lo: f.test_start as number, hi: f.test_end as number, n: f.fold_number }))
    .sort((a, b) => a.lo - b.lo);
  const out: Bar[] = [];
  for (const t of times) {
    const w = windows.find((x) => t >= x.lo && t <= x.hi);
    if (w) out.push({ time: t, value: 1, color: palette[w.n % palette.length] });
  }
  return out;
}

/** Distinct threshold values across folds for one threshold key (the run's horizontal lines). */
export function thresholdLevels(folds: Fold[]): { key: string; value: number }[] {
  const seen = new Map<string, number>();
  for (const f of folds) {
    for (const [key, v] of Object.entries(f.thresholds ?? {})) {
      const n = num(v);
      if (n !== null && !seen.has(`${key}=${n}`)) seen.set(`${key}=${n}`, n);
    }
  }
  return [...seen.entries()].map(([k, value]) => ({ key: k.split("=")[0], value }));
}

/** Histogram bins (Freedman–Diaconis width, at least 1 bin, at most maxBins). */
export function histogram(values: number[], maxBins = 40): { lo: number; hi: number; count: number }[] {
  const xs = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return [];
  const min = xs[0], max = xs[xs.length - 1];
  if (min === max) return [{ lo: min, hi: max, count: xs.length }];
  const q = (p: number) => xs[Math.min(xs.length - 1, Math.floor(p * (xs.length - 1)))];
  const iqr = q(0.75) - q(0.25);
  let width = iqr > 0 ? (2 * iqr) / Math.cbrt(xs.length) : (max - min) / Math.ceil(Math.log2(xs.length) + 1);
  let bins = Math.ceil((max - min) / width);
  if (bins > maxBins) { bins = maxBins; width = (max - min) / bins; }
  bins = Math.max(1, bins);
  const out = Array.from({ length: bins }, (_, i) => ({ lo: min + i * width, hi: min + (i + 1) * width, count: 0 }));
  for (const x of xs) out[Math.min(bins - 1, Math.floor((x - min) / width))].count++;
  return out;
}

/** Per-fold metric series for uPlot: x = fold numbers, one y array per run. */
export function foldMetricSeries(runs: { folds: Fold[] }[], metric: string): { x: number[]; ys: (number | null)[][] } {
  const folds = new Set<number>();
  runs.forEach((r) => r.folds.forEach((f) => folds.add(f.fold_number)));
  const x = [...folds].sort((a, b) => a - b);
  const ys = runs.map((r) => x.map((n) => num(r.folds.find((f) => f.fold_number === n)?.metrics?.[metric]) ));
  return { x, ys };
}

/** The metric keys any fold of these runs has. */
export function foldMetricKeys(runs: { folds: Fold[] }[]): string[] {
  const keys = new Set<string>();
  runs.forEach((r) => r.folds.forEach((f) => Object.keys(f.metrics ?? {}).forEach((k) => keys.add(k))));
  return [...keys].sort();
}

/** Multipart plan check: parts must be sent with exactly their signed sizes; returns [start, end) byte slices. */
export function partSlices(fileSize: number, partSize: number, parts: { part_number: number; size?: number | null }[]): { part: number; start: number; end: number }[] {
  let start = 0;
  const out = [];
  for (const p of [...parts].sort((a, b) => a.part_number - b.part_number)) {
    const size = p.size ?? Math.min(partSize, fileSize - start);
    out.push({ part: p.part_number, start, end: start + size });
    start += size;
  }
  if (start !== fileSize) throw new Error(`the signed part sizes add up to ${start} bytes, the file has ${fileSize}`);
  return out;
}

/** Visible time range -> the query's from/to (whole seconds, inclusive), or null when unchanged enough. */
export function rangeQuery(from: number, to: number, loaded: { from: number; to: number } | null, minShift = 0.1): { from: number; to: number } | null {
  const q = { from: Math.floor(from), to: Math.ceil(to) };
  if (!loaded) return q;
  const span = Math.max(1, loaded.to - loaded.from);
  if (Math.abs(q.from - loaded.from) / span < minShift && Math.abs(q.to - loaded.to) / span < minShift) return null;
  return q;
}

export function fmt(v: unknown): string {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(6).replace(/\.?0+$/, "");
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

export function fmtTime(unix: number | null | undefined): string {
  if (unix === null || unix === undefined) return "—";
  return new Date(unix * 1000).toISOString().replace("T", " ").replace(/:00\.000Z$|\.000Z$/, "Z");
}

export function fmtBytes(n: number): string {
  const u = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}
