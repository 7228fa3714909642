"""Series at chart resolution (issue 13): `max_points` on the OHLCV, indicator and prediction reads
(QuestDB SAMPLE BY) and the equity curve of a simulation (Postgres window sum), through the gateway
against the real services. Expected values are computed here from the rows the test wrote."""

from __future__ import annotations

import csv
import io
import itertools
import random
import time
from pathlib import Path

import pytest
from resources_support import (
    HOUR,
    START,
    assert_envelope,
    dataset,
    indicator_rows,
    ohlcv_rows,
    predictions,
    write_table,
)

from stage1.timeseries.kinds import Kind

# Ten hand-checkable bars (one per hour): two buckets of five at max_points=2.
BARS = [
    {"timestamp": START + i * HOUR, "open": o, "high": h, "low": lo, "close": c, "volume": v}
    for i, (o, h, lo, c, v) in enumerate([
        (10.0, 12.0, 9.0, 11.0, 1.0), (11.0, 15.0, 10.0, 14.0, 2.0), (14.0, 14.5, 8.0, 9.0, 3.0),
        (9.0, 10.0, 7.5, 9.5, 4.0), (9.5, 11.0, 9.0, 10.0, 5.0), (10.0, 10.5, 6.0, 7.0, 6.0),
        (7.0, 20.0, 7.0, 19.0, 7.0), (19.0, 19.5, 18.0, 18.5, 8.0), (18.5, 18.5, 5.0, 6.0, 9.0),
        (6.0, 8.0, 5.5, 7.5, 10.0)])
]


def _plan(first: int, last: int, n: int) -> tuple[int, int]:
    """(origin, width) by the documented rule: width = span // n + 1 seconds from the first observation;
    from an hour up, whole hours from the hour of the first observation."""
    width = (last - first) // n + 1
    if width < HOUR:
        return first, width
    origin = first - first % HOUR
    return origin, ((last - origin) // (n * HOUR) + 1) * HOUR


def _bucket(rows: list[dict], width: int, first: int) -> list[list[dict]]:
    """Rows grouped as the server buckets them: `width` seconds counted from `first` (the origin)."""
    return [list(g) for _, g in itertools.groupby(rows, key=lambda r: (r["timestamp"] - first) // width)]


def _ohlcv_of(group: list[dict]) -> dict:
    return {"open": group[0]["open"], "high": max(r["high"] for r in group), "low": min(r["low"] for r in group),
            "close": group[-1]["close"], "volume": sum(r["volume"] for r in group)}


@pytest.fixture
def bars(client, unique):
    with dataset(client, f"h14ds_{unique}") as ds:
        write_table(Kind.OHLCV, ds["ohlcv_measurement"], BARS)
        yield ds


@pytest.fixture
def long_series(client, unique):
    """900 OHLCV bars and 900 indicator rows, hourly."""
    with dataset(client, f"h14dl_{unique}") as ds:
        ohlcv, ind = ohlcv_rows(900), indicator_rows(900, START)
        write_table(Kind.OHLCV, ds["ohlcv_measurement"], ohlcv)
        write_table(Kind.INDICATORS, ds["indicator_measurement"], ind)
        yield ds, ohlcv, ind


def test_ohlcv_aggregates_are_exact(client, bars):
    r = client.get(f"/api/datasets/{bars['dataset_id']}/ohlcv", params={"max_points": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    # span 9 h over 2 points: 9*3600 // 2 + 1 = 16201 s, at least an hour: whole hours, 5 h from the
    # first bar's hour: bars 0-4 and 5-9.
    assert body["downsampled"] is True and body["bucket_seconds"] == 18000 and body["max_points"] == 2
    assert body["columns"] == ["timestamp", "open", "high", "low", "close", "volume"]
    assert body["total"] == 2 and body["next_offset"] is None
    assert body["rows"] == [
        {"timestamp": START, "open": 10.0, "high": 15.0, "low": 7.5, "close": 10.0, "volume": 15.0},
        {"timestamp": START + 18000, "open": 10.0, "high": 20.0, "low": 5.0, "close": 7.5, "volume": 40.0},
    ]
    # The same as CSV, with the headers that say it was downsampled.
    r = client.get(f"/api/datasets/{bars['dataset_id']}/ohlcv", params={"max_points": 2, "format": "csv"})
    assert r.status_code == 200, r.text
    assert r.headers["x-stage1-downsampled"] == "true" and r.headers["x-stage1-bucket-seconds"] == "18000"
    parsed = list(csv.DictReader(io.StringIO(r.text)))
    assert [{k: float(v) for k, v in p.items()} for p in parsed] == [
        {k: float(v) for k, v in row.items()} for row in body["rows"]]
    # Without max_points nothing changes: the raw rows, no downsampling fields.
    plain = client.get(f"/api/datasets/{bars['dataset_id']}/ohlcv").json()
    assert plain["rows"] == BARS and "downsampled" not in plain and "bucket_seconds" not in plain


def test_ohlcv_buckets_match_python_for_several_n_and_windows(client, long_series):
    ds, ohlcv, _ = long_series
    url = f"/api/datasets/{ds['dataset_id']}/ohlcv"
    windows = [(None, None), (ohlcv[100]["timestamp"], ohlcv[649]["timestamp"]),
               (ohlcv[10]["timestamp"] + 1, ohlcv[20]["timestamp"] - 1), (ohlcv[899]["timestamp"], None)]
    for (lo, hi), n in itertools.product(windows, [2, 3, 7, 100, 899, 900, 2000]):
        params = {"max_points": n, **({"from": lo} if lo is not None else {}), **({"to": hi} if hi is not None else {})}
        body = client.get(url, params=params).json()
        inside = [r for r in ohlcv if (lo is None or r["timestamp"] >= lo) and (hi is None or r["timestamp"] <= hi)]
        origin, width = _plan(inside[0]["timestamp"], inside[-1]["timestamp"], n)
        assert body["bucket_seconds"] == width, (params, body.get("bucket_seconds"))
        assert len(body["rows"]) == body["total"] <= n, params
        want = [{"timestamp": origin + ((g[0]["timestamp"] - origin) // width) * width,
                 **_ohlcv_of(g)} for g in _bucket(inside, width, origin)]
        assert len(body["rows"]) == len(want), params
        for got, exp in zip(body["rows"], want, strict=True):
            assert got["timestamp"] == exp["timestamp"]
            for key in ("open", "high", "low", "close"):
                assert got[key] == exp[key], (params, key)
            assert got["volume"] == pytest.approx(exp["volume"], rel=1e-12)
    # A window with no rows: an empty downsampled answer, no width.
    empty = client.get(url, params={"max_points": 10, "from": START - 10 * HOUR, "to": START - HOUR}).json()
    assert empty["rows"] == [] and empty["total"] == 0 and empty["bucket_seconds"] is None


def test_indicators_last_per_bucket_and_paging(client, long_series):
    ds, _, ind = long_series
    url = f"/api/datasets/{ds['dataset_id']}/indicators"
    body = client.get(url, params={"max_points": 50, "columns": "signal,rsi_14"}).json()
    origin, width = _plan(ind[0]["timestamp"], ind[-1]["timestamp"], 50)
    groups = _bucket(ind, width, origin)
    assert body["columns"] == ["timestamp", "signal", "rsi_14"] and body["bucket_seconds"] == width
    assert body["rows"] == [{"timestamp": origin + ((g[0]["timestamp"] - origin) // width) * width,
                             "signal": g[-1]["signal"], "rsi_14": g[-1]["rsi_14"]} for g in groups]
    # Pages of the buckets join up to the whole answer.
    first = client.get(url, params={"max_points": 50, "columns": "signal,rsi_14", "limit": 20}).json()
    rest = client.get(url, params={"max_points": 50, "columns": "signal,rsi_14", "limit": 40,
                                   "offset": first["next_offset"]}).json()
    assert first["total"] == rest["total"] == len(groups) and rest["next_offset"] is None
    assert first["rows"] + rest["rows"] == body["rows"]


def test_predictions_downsampled_keep_column_order_and_last_values(client, unique):
    thresholds = ["threshold_0", "threshold_1"]
    rows = predictions(600, 3, thresholds)
    with dataset(client, f"h14dp_{unique}") as ds:
        r = client.post("/api/runs", json={"dataset_id": ds["dataset_id"], "predictions": rows,
                                           "threshold_columns": thresholds,
                                           "folds": [{"fold_number": k} for k in range(3)]})
        assert r.status_code == 201, r.text
        run_id = r.json()["run_id"]
        url = f"/api/runs/{run_id}/predictions"
        body = client.get(url, params={"max_points": 40}).json()
        header = ["timestamp", "bar_index", "fold_number", "prediction", "target", *thresholds]
        assert body["columns"] == header and body["downsampled"] is True
        origin, width = _plan(rows[0]["timestamp"], rows[-1]["timestamp"], 40)
        want = [{"timestamp": origin + ((g[0]["timestamp"] - origin) // width) * width,
                 **{c: g[-1][c] for c in header[1:]}} for g in _bucket(rows, width, origin)]
        assert body["predictions"] == want and len(want) <= 40
        assert [list(p) for p in body["predictions"]] == [header] * len(want)  # keys in the documented order
        fold1 = client.get(url, params={"max_points": 10, "fold": 1}).json()
        inside = [p for p in rows if p["fold_number"] == 1]
        assert fold1["total"] <= 10 and {p["fold_number"] for p in fold1["predictions"]} == {1}
        assert fold1["predictions"][0]["timestamp"] == inside[0]["timestamp"]
        assert fold1["predictions"][-1]["bar_index"] == inside[-1]["bar_index"]
        table = list(csv.reader(io.StringIO(client.get(url, params={"max_points": 40, "format": "csv"}).text)))
        assert table[0] == header and len(table) == len(want) + 1
        client.delete(f"/api/runs/{run_id}")


def _trades(n: int) -> list[dict]:
    rng = random.Random(5)
    return [{"bar_timestamp": START + rng.randrange(0, 2000) * HOUR, "side": rng.choice(["long", "short"]),
             "pnl": round(rng.uniform(-50, 60), 3)} for _ in range(n)]


def test_equity_curve_is_the_cumulative_pnl(client, unique):
    trades = _trades(400)
    with dataset(client, f"h14eq_{unique}") as ds:
        run = client.post("/api/runs", json={"dataset_id": ds["dataset_id"], "folds": [{"fold_number": 0}]}).json()
        r = client.post("/api/simulations", json={"run_id": run["run_id"], "name": "eq", "trades": trades})
        assert r.status_code == 201, r.text
        url = f"/api/simulations/{r.json()['simulation_id']}/equity"
        ordered = sorted(((t["bar_timestamp"], i, t["pnl"]) for i, t in enumerate(trades)))
        curve, equity = [], 0.0
        for ts, i, pnl in ordered:
            equity += pnl
            curve.append({"timestamp": ts, "trade_index": i, "pnl": pnl, "equity": equity})
        body = client.get(url, params={"limit": 10_000}).json()
        assert body["columns"] == ["timestamp", "trade_index", "pnl", "equity"] and body["downsampled"] is False
        assert body["total"] == 400 and len(body["points"]) == 400
        for got, exp in zip(body["points"], curve, strict=True):
            assert got["timestamp"] == exp["timestamp"] and got["trade_index"] == exp["trade_index"]
            assert got["equity"] == pytest.approx(exp["equity"], abs=1e-9)
        # A window keeps the equity the earlier trades left.
        lo, hi = curve[100]["timestamp"], curve[300]["timestamp"]
        window = client.get(url, params={"from": lo, "to": hi, "limit": 10_000}).json()
        inside = [c for c in curve if lo <= c["timestamp"] <= hi]
        assert [p["trade_index"] for p in window["points"]] == [c["trade_index"] for c in inside]
        assert window["points"][0]["equity"] == pytest.approx(inside[0]["equity"], abs=1e-9)
        # Downsampled: last, min and max per bucket, at most N buckets.
        for n in (2, 7, 50, 400, 10_000):
            got = client.get(url, params={"max_points": n}).json()
            first, width = _plan(curve[0]["timestamp"], curve[-1]["timestamp"], n)
            groups = _bucket(curve, width, first)
            assert got["downsampled"] is True and got["bucket_seconds"] == width and got["total"] == len(groups) <= n
            for point, g in zip(got["points"], groups, strict=True):
                assert point["timestamp"] == first + ((g[0]["timestamp"] - first) // width) * width
                assert point["equity"] == pytest.approx(g[-1]["equity"], abs=1e-9)
                assert point["equity_min"] == pytest.approx(min(c["equity"] for c in g), abs=1e-9)
                assert point["equity_max"] == pytest.approx(max(c["equity"] for c in g), abs=1e-9)
                assert point["trades"] == len(g)
        csv_r = client.get(url, params={"max_points": 7, "format": "csv"})
        assert csv_r.status_code == 200 and csv_r.headers["x-stage1-downsampled"] == "true"
        lines = csv_r.text.splitlines()
        assert lines[0] == "timestamp,equity,equity_min,equity_max,trades" and 2 <= len(lines) <= 8
        plain_csv = list(csv.DictReader(io.StringIO(client.get(url, params={"format": "csv"}).text)))
        assert [int(p["trade_index"]) for p in plain_csv] == [c["trade_index"] for c in curve]
        assert float(plain_csv[-1]["equity"]) == pytest.approx(curve[-1]["equity"], abs=1e-9)
        unknown = client.get("/api/simulations/00000000-0000-4000-8000-000000000000/equity")
        assert_envelope(unknown, 404)


@pytest.mark.parametrize("value", ["0", "1", "10001", "1000000000", "abc", "2.5", ""])
def test_bad_max_points_is_400(client, bars, value):
    for url in (f"/api/datasets/{bars['dataset_id']}/ohlcv", f"/api/datasets/{bars['dataset_id']}/indicators",
                "/api/runs/00000000-0000-4000-8000-000000000000/predictions",
                "/api/simulations/00000000-0000-4000-8000-000000000000/equity"):
        assert_envelope(client.get(url, params={"max_points": value}), 400)


def test_client_passes_max_points(gateway_url, api_token, bars):
    from datetime import UTC, datetime

    from stage1_client import Client
    from stage1_wire.datasets import DownsampledRows, Rows

    with Client(gateway_url, api_token) as c:
        sampled = c.datasets.ohlcv(bars["dataset_slug"], start=datetime.fromtimestamp(START, UTC),
                                   end=START + 9 * HOUR, max_points=2)
        assert isinstance(sampled, DownsampledRows) and sampled.bucket_seconds == 18000
        assert [r["volume"] for r in sampled.rows] == [15.0, 40.0]
        zoomed = c.datasets.ohlcv(bars["dataset_slug"], start=START + 5 * HOUR, max_points=5)
        assert zoomed.total <= 5 and zoomed.rows[0]["open"] == 10.0 and zoomed.rows[-1]["close"] == 7.5
        plain = c.datasets.ohlcv(bars["dataset_slug"], start=START, end=START + 2 * HOUR)
        assert type(plain) is Rows and plain.rows == BARS[:3]


def _hostile_queries() -> list[str]:
    path = Path(__file__).parents[1] / "hostile" / "series.txt"
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def test_hostile_series_queries(client, bars, unique):
    """tests/hostile/series.txt against real resources: each case is a 400 envelope on every endpoint."""
    run = client.post("/api/runs", json={"dataset_id": bars["dataset_id"], "folds": [{"fold_number": 0}],
                                         "predictions": predictions(20, 1, [])}).json()
    sim = client.post("/api/simulations", json={"run_id": run["run_id"], "name": "h", "trades": _trades(5)}).json()
    urls = [f"/api/datasets/{bars['dataset_id']}/ohlcv", f"/api/datasets/{bars['dataset_id']}/indicators",
            f"/api/runs/{run['run_id']}/predictions", f"/api/simulations/{sim['simulation_id']}/equity"]
    cases = _hostile_queries()
    assert len(cases) >= 20
    for case in cases:
        for url in urls:
            if "timestamp_unit" in case and "equity" in url:
                continue  # the equity read has no timestamp_unit (its timestamps are the trades' seconds)
            assert_envelope(client.get(f"{url}?{case}"), 400)


def test_hourly_rollup_gives_the_same_buckets_and_goes_with_its_table(client, unique):
    """The downsampled OHLCV read from the table's hourly rollup (timeseries.rollup) equals the exact
    aggregates of the raw rows; deleting the dataset drops the view with the table."""
    from stage1.core.questdb import get_questdb
    from stage1.timeseries import downsample, reads, rollup

    minute = ohlcv_rows(3 * 24 * 60, step=60, seed=9)
    with dataset(client, f"h14ru_{unique}") as ds:
        table = ds["ohlcv_measurement"]
        write_table(Kind.OHLCV, table, minute)
        rollup._create(table, "timestamp")  # what a read of a table of >= ROLLUP_MIN_ROWS rows does itself
        name = rollup.view_name(table)
        columns = ["open", "high", "low", "close", "volume"]
        for _ in range(100):
            if rollup.fresh_view(table, "timestamp", columns) == name:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the rollup did not catch up")
        windows = [(None, None), (START + 5 * HOUR, START + 50 * HOUR - 1)]
        for (lo, hi), n in itertools.product(windows, [3, 10, 40]):
            params = {"max_points": n, **({"from": lo, "to": hi} if lo is not None else {})}
            query = reads.RowQuery(table=table, ts_column="timestamp", ts_type="TIMESTAMP", columns=columns,
                                   from_s=lo, to_s=hi)
            plan = downsample.sampled(query, downsample.aggregates(
                [reads.TableColumn(c, "DOUBLE", False) for c in columns], ohlcv=True), n, rollup=True)
            assert plan is not None and plan.source == name, params  # this read is served by the view
            body = client.get(f"/api/datasets/{ds['dataset_id']}/ohlcv", params=params).json()
            inside = [r for r in minute
                      if (lo is None or r["timestamp"] >= lo) and (hi is None or r["timestamp"] <= hi)]
            origin, width = _plan(inside[0]["timestamp"], inside[-1]["timestamp"], n)
            assert body["bucket_seconds"] == width and width % HOUR == 0 and body["total"] <= n
            want = [{"timestamp": origin + ((g[0]["timestamp"] - origin) // width) * width, **_ohlcv_of(g)}
                    for g in _bucket(inside, width, origin)]
            assert [r["timestamp"] for r in body["rows"]] == [w["timestamp"] for w in want]
            for got, exp in zip(body["rows"], want, strict=True):
                assert {k: got[k] for k in ("open", "high", "low", "close")} == {
                    k: exp[k] for k in ("open", "high", "low", "close")}
                assert got["volume"] == pytest.approx(exp["volume"], rel=1e-12)
        # A window that cuts an hour is read from the table (still exact, checked above for the table).
        cut = reads.RowQuery(table=table, ts_column="timestamp", ts_type="TIMESTAMP", columns=columns,
                             from_s=START + 5 * HOUR + 60)
        assert downsample.sampled(cut, {}, 10, rollup=True).source is None
    views = get_questdb().exec(f"select view_name from materialized_views() where view_name = '{name}'").rows()
    assert views == []
