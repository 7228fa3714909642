import { describe, expect, it } from "vitest";
import { foldMetricSeries, foldShading, histogram, mergeWindow, partSlices, rangeQuery, thresholdLevels, toCandles, toLine, toVolume } from "./shape";

describe("rows -> series", () => {
  const rows = [
    { timestamp: 20, open: 2, high: 3, low: 1, close: 1.5, volume: 7 },
    { timestamp: 10, open: 1, high: 2, low: 0.5, close: 2, volume: 5 },
    { timestamp: 10, open: 9, high: 9, low: 9, close: 9, volume: 9 },
    { timestamp: 30, open: null, high: 1, low: 1, close: 1, volume: 1 },
  ];
  it("candles are ascending, unique, and skip incomplete rows", () => {
    expect(toCandles(rows).map((c) => c.time)).toEqual([10, 20]);
    expect(toCandles(rows)[0]).toEqual({ time: 10, open: 1, high: 2, low: 0.5, close: 2 });
  });
  it("volume bars take the candle's direction", () => {
    const v = toVolume(rows);
    expect(v.map((b) => b.time)).toEqual([10, 20, 30]);
    expect(v[0].color).toContain("38,166,154");
    expect(v[1].color).toContain("239,83,80");
  });
  it("a line skips nulls", () => {
    expect(toLine([{ timestamp: 1, x: null }, { timestamp: 2, x: 4 }], "x")).toEqual([{ time: 2, value: 4 }]);
  });
  it("a detailed window replaces the overview inside it", () => {
    const o = [1, 5, 9, 13].map((time) => ({ time }));
    const d = [4, 5, 6, 7, 8].map((time) => ({ time }));
    expect(mergeWindow(o, d).map((x) => x.time)).toEqual([1, 4, 5, 6, 7, 8, 9, 13]);
  });
});

describe("folds", () => {
  const folds = [
    { fold_number: 0, test_start: 10, test_end: 20, thresholds: { t0: 0.5, t1: 0.6 }, metrics: { auc: 0.5 } },
    { fold_number: 1, test_start: 21, test_end: 30, thresholds: { t0: 0.5, t1: 0.7 }, metrics: { auc: 0.6 } },
  ];
  it("shades only times inside a test window, alternating colours", () => {
    const s = foldShading([5, 10, 20, 25, 31], folds, ["a", "b"]);
    expect(s).toEqual([{ time: 10, value: 1, color: "a" }, { time: 20, value: 1, color: "a" }, { time: 25, value: 1, color: "b" }]);
  });
  it("threshold levels are distinct per key", () => {
    expect(thresholdLevels(folds)).toEqual([{ key: "t0", value: 0.5 }, { key: "t1", value: 0.6 }, { key: "t1", value: 0.7 }]);
  });
  it("fold metric series align runs by fold number", () => {
    const r = foldMetricSeries([{ folds }, { folds: [folds[1]] }], "auc");
    expect(r).toEqual({ x: [0, 1], ys: [[0.5, 0.6], [null, 0.6]] });
  });
});

describe("histogram bucket width", () => {
  it("counts every value once", () => {
    const xs = Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 10);
    const h = histogram(xs);
    expect(h.reduce((a, b) => a + b.count, 0)).toBe(1000);
    expect(h.length).toBeLessThanOrEqual(40);
    expect(h[0].lo).toBeCloseTo(Math.min(...xs));
  });
  it("one value, one bin", () => {
    expect(histogram([3, 3, 3])).toEqual([{ lo: 3, hi: 3, count: 3 }]);
    expect(histogram([])).toEqual([]);
  });
});

describe("uploads and ranges", () => {
  it("slices parts by their signed sizes", () => {
    expect(partSlices(25, 10, [{ part_number: 2, size: 10 }, { part_number: 1, size: 10 }, { part_number: 3, size: 5 }]))
      .toEqual([{ part: 1, start: 0, end: 10 }, { part: 2, start: 10, end: 20 }, { part: 3, start: 20, end: 25 }]);
    expect(() => partSlices(26, 10, [{ part_number: 1, size: 10 }, { part_number: 2, size: 10 }])).toThrow(/26/);
  });
  it("re-queries only when the visible range moved", () => {
    expect(rangeQuery(100.5, 200.2, null)).toEqual({ from: 100, to: 201 });
    expect(rangeQuery(101, 200, { from: 100, to: 200 })).toBeNull();
    expect(rangeQuery(150, 200, { from: 100, to: 200 })).toEqual({ from: 150, to: 200 });
  });
});
