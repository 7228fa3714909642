"""`GET /api/runs/compare` through the gateway (issue 13): three runs seeded through the API with
overlapping and different keys; the exact table, `differs`, the CSV, the bounds (51 ids, a repeat,
a non-UUID, an unknown id), the client's table and DataFrame, and `stage1 runs compare`."""

from __future__ import annotations

import codecs
import csv
import io
import subprocess
import uuid
from pathlib import Path

import pytest
from client_support import STAGE1, cli_env
from resources_support import assert_envelope, dataset

from stage1.core import db
from stage1_client import Client

RUNS = [
    {"hyperparameters": {"max_depth": 6, "eta": 0.1, "booster": {"kind": "gbtree", "lanes": 2}},
     "walk_config": {"train_bars": 500, "test_bars": 100},
     "summary_metrics": {"sharpe": 1.5, "auc": 0.61},
     "folds": [{"fold_number": 0, "metrics": {"auc": 0.6, "n": 10}}, {"fold_number": 1, "metrics": {"auc": 0.62}}]},
    {"hyperparameters": {"max_depth": 6, "eta": 0.2, "booster": {"kind": "gbtree", "lanes": 2}},
     "walk_config": {"train_bars": 500, "test_bars": 100},
     "summary_metrics": {"sharpe": 1.5, "auc": 0.58, "sortino": 2},
     "folds": [{"fold_number": 0, "metrics": {"auc": 0.5, "n": 10}}, {"fold_number": 1, "metrics": {"auc": 0.66}}]},
    {"hyperparameters": {"max_depth": 6.0, "eta": 0.1, "booster": {"kind": "dart", "lanes": 2}},
     "walk_config": {"train_bars": 500, "test_bars": 200, "purge": True},
     "summary_metrics": {"sharpe": 1.5, "auc": 0.61},
     "folds": [{"fold_number": 0, "metrics": {"auc": 0.6, "n": 10}}]},
]
# key -> (values of runs 0, 1, 2; differs)
EXPECTED = {
    "hyperparameters.booster.kind": (["gbtree", "gbtree", "dart"], True),
    "hyperparameters.booster.lanes": ([2, 2, 2], False),
    "hyperparameters.eta": ([0.1, 0.2, 0.1], True),
    "hyperparameters.max_depth": ([6, 6, 6.0], False),  # 6 == 6.0: numbers compare as numbers
    "walk_config.purge": ([None, None, True], True),  # missing in two runs
    "walk_config.test_bars": ([100, 100, 200], True),
    "walk_config.train_bars": ([500, 500, 500], False),
    "summary_metrics.auc": ([0.61, 0.58, 0.61], True),
    "summary_metrics.sharpe": ([1.5, 1.5, 1.5], False),
    "summary_metrics.sortino": ([None, 2, None], True),
    "folds.metrics.auc.max": ([0.62, 0.66, 0.6], True),
    "folds.metrics.n.max": ([10.0, 10.0, 10.0], False),
    "folds.metrics.auc.mean": ([0.61, 0.58, 0.6], True),
    "folds.metrics.n.mean": ([10.0, 10.0, 10.0], False),
    "folds.metrics.auc.min": ([0.6, 0.5, 0.6], True),
    "folds.metrics.n.min": ([10.0, 10.0, 10.0], False),
    "folds.0.metrics.auc": ([0.6, 0.5, 0.6], True),
    "folds.0.metrics.n": ([10, 10, 10], False),
    "folds.1.metrics.auc": ([0.62, 0.66, None], True),
}
ORDER = [  # sections in order, keys sorted, folds by number
    "hyperparameters.booster.kind", "hyperparameters.booster.lanes", "hyperparameters.eta",
    "hyperparameters.max_depth", "walk_config.purge", "walk_config.test_bars", "walk_config.train_bars",
    "summary_metrics.auc", "summary_metrics.sharpe", "summary_metrics.sortino",
    "folds.metrics.auc.mean", "folds.metrics.auc.min", "folds.metrics.auc.max", "folds.metrics.n.mean",
    "folds.metrics.n.min", "folds.metrics.n.max", "folds.0.metrics.auc", "folds.0.metrics.n",
    "folds.1.metrics.auc",
]


@pytest.fixture(scope="module")
def seeded(gateway_url, api_headers):
    import httpx

    with httpx.Client(base_url=gateway_url, headers=api_headers, timeout=60) as c, \
            dataset(c, f"cmp_{uuid.uuid4().hex[:10]}") as ds:
        ids = []
        for spec in RUNS:
            r = c.post("/api/runs", json={"dataset_id": ds["dataset_id"], "target_column": "y", **spec})
            assert r.status_code == 201, r.text
            ids.append(r.json()["run_id"])
        yield ds, ids


def _close(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(a - b) < 1e-9
    return a == b


def test_compare_table_is_exact(client, seeded):
    ds, ids = seeded
    r = client.get("/api/runs/compare", params={"run_ids": ",".join(ids)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [h["run_id"] for h in body["runs"]] == ids
    assert {h["dataset_slug"] for h in body["runs"]} == {ds["dataset_slug"]}
    assert [h["status"] for h in body["runs"]] == ["COMPLETED"] * 3
    assert [h["fold_count"] for h in body["runs"]] == [2, 2, 1]
    assert all(h["created_at"].endswith("Z") for h in body["runs"])
    assert [row["key"] for row in body["rows"]] == ORDER
    for row in body["rows"]:
        values, differs = EXPECTED[row["key"]]
        assert all(_close(a, b) for a, b in zip(row["values"], values, strict=True)), row
        assert row["differs"] is differs, row
    assert body["differing"] == sum(d for _, d in EXPECTED.values())
    assert body["total"] == len(EXPECTED)
    assert {row["section"] for row in body["rows"]} == {"hyperparameters", "walk_config", "summary_metrics",
                                                        "fold_aggregates", "folds"}
    # the order of the request is the order of the columns
    again = client.get("/api/runs/compare", params={"run_ids": ",".join(reversed(ids))}).json()
    assert [h["run_id"] for h in again["runs"]] == ids[::-1]
    assert again["rows"][0]["values"] == ["dart", "gbtree", "gbtree"]


def test_compare_csv(client, seeded):
    _, ids = seeded
    r = client.get("/api/runs/compare", params={"run_ids": ",".join(ids), "format": "csv"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["key", "section", "differs", *ids]
    assert [row[0] for row in rows[1:]] == ORDER
    by_key = {row[0]: row for row in rows[1:]}
    assert by_key["hyperparameters.booster.kind"] == ["hyperparameters.booster.kind", "hyperparameters", "true",
                                                      "gbtree", "gbtree", "dart"]
    assert by_key["walk_config.purge"] == ["walk_config.purge", "walk_config", "true", "", "", "true"]
    assert by_key["summary_metrics.sharpe"][2:] == ["false", "1.5", "1.5", "1.5"]
    assert by_key["folds.1.metrics.auc"][2:] == ["true", "0.62", "0.66", ""]


def test_compare_bounds(client, seeded):
    _, ids = seeded
    many = [str(uuid.uuid4()) for _ in range(51)]
    body = assert_envelope(client.get("/api/runs/compare", params={"run_ids": ",".join(many)}), 400)
    assert body["details"]["count"] == 51
    body = assert_envelope(client.get("/api/runs/compare", params={"run_ids": f"{ids[0]},{ids[0].upper()}"}), 400)
    assert body["details"]["duplicates"] == [ids[0]]
    body = assert_envelope(client.get("/api/runs/compare", params={"run_ids": f"{ids[0]},compare"}), 400)
    assert body["details"]["invalid"] == ["compare"]
    assert_envelope(client.get("/api/runs/compare", params={"run_ids": ids[0]}), 400)  # one run
    assert_envelope(client.get("/api/runs/compare"), 400)  # none
    assert_envelope(client.get("/api/runs/compare", params={"run_ids": ",".join(ids), "format": "xml"}), 400)
    unknown = str(uuid.uuid4())
    body = assert_envelope(client.get("/api/runs/compare", params={"run_ids": f"{ids[0]},{unknown}"}), 404)
    assert body["details"]["run_ids"] == [unknown]
    # "compare" is the route, never a run id; a run still reads by its id
    assert client.get(f"/api/runs/{ids[0]}").json()["run_id"] == ids[0]


def test_client_compare_and_frame(gateway_url, api_token, seeded):
    _, ids = seeded
    with Client(gateway_url, api_token) as c:
        table = c.runs.compare(ids)
        assert [str(r.run_id) for r in table.runs] == ids
        assert {row.key: row.differs for row in table.rows} == {k: d for k, (_, d) in EXPECTED.items()}
        pandas = pytest.importorskip("pandas")
        frame = c.runs.compare(ids, frame=True)
        assert isinstance(frame, pandas.DataFrame)
        assert list(frame.columns) == [*ids, "section", "differs"]
        assert frame.loc["hyperparameters.booster.kind", ids[2]] == "dart"
        assert list(frame.index[frame["differs"]]) == [k for k in ORDER if EXPECTED[k][1]]
        assert table.to_frame().equals(frame)
        assert c.runs.compare_csv(ids).splitlines()[0] == ",".join(["key", "section", "differs", *ids])


def test_cli_runs_compare(gateway_url, api_token, seeded):
    _, ids = seeded
    env = cli_env(gateway_url, api_token)
    r = subprocess.run([STAGE1, "runs", "compare", *ids], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    differing = [k for k in ORDER if EXPECTED[k][1]]
    assert f"{len(differing)} of {len(ORDER)} keys differ" in r.stdout
    lines = r.stdout.splitlines()
    for key in ORDER:  # every key shown, the differing ones marked with *
        line = next(line for line in lines if f" {key} " in line)
        assert ("*" in line.split(key)[0]) is EXPECTED[key][1], line
    r = subprocess.run([STAGE1, "runs", "compare", *ids, "--differing"], capture_output=True, text=True, timeout=60,
                       env=env)
    assert r.returncode == 0, r.stderr
    assert "hyperparameters.eta" in r.stdout and "summary_metrics.sharpe" not in r.stdout
    r = subprocess.run([STAGE1, "runs", "compare", *ids, "--output", "csv"], capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == ",".join(["key", "section", "differs", *ids])
    r = subprocess.run([STAGE1, "runs", "compare", ids[0]], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1 and "at least 2" in r.stderr


CORPUS = Path(__file__).parents[1] / "hostile" / "compare.txt"


def test_hostile_run_ids(client, seeded):
    """Every case of tests/hostile/compare.txt is its 4xx with the error envelope (or a 200), never a 5xx."""
    _, (a, b, c) = seeded
    names = {"{a}": a, "{b}": b, "{c}": c, "{A}": a.upper(), "{u}": str(uuid.uuid4())}
    cases = []
    for number, raw in enumerate(CORPUS.read_text(encoding="ascii").split("\n"), start=1):
        if raw.strip() and not raw.startswith("#"):
            status, text = raw.split("\t", 1)
            for key, value in names.items():
                text = text.replace(key, value)
            cases.append((number, int(status), codecs.decode(text, "unicode_escape") if "\\" in text else text))
    # 1,500 ids: ~55 kB, under the client's URL cap
    cases += [(0, 400, ",".join(str(uuid.uuid4()) for _ in range(n))) for n in (51, 1_500)]
    cases += [(0, 400, "x" * 60_000), (0, 400, ",".join([a] * 50))]
    wrong = []
    for number, status, value in cases:
        r = client.get("/api/runs/compare", params={"run_ids": value})
        if r.status_code != status or (status != 200 and set(r.json()) != {"error", "details"}):
            wrong.append((number, value[:60], r.status_code, r.text[:200]))
    assert wrong == []


def test_a_run_above_the_response_cap_is_413(client, seeded, settings):
    """A run whose walk config alone is above the cap (5 MiB): the comparison is refused with
    413 from the sizes Postgres measures, before its JSON is read (the limit while the table is
    built is tests/unit/test_runs_compare.py's)."""
    ds_id, (a, _, _) = seeded[0]["dataset_id"], seeded[1]
    cap = settings.exports.export_inline_max_bytes
    r = client.post("/api/runs", json={"dataset_id": ds_id, "target_column": "y"})
    assert r.status_code == 201, r.text[:300]
    big = r.json()["run_id"]
    # Setup only (posting 5 MB takes seconds): Postgres grows the run's walk config past the cap.
    with db.connection() as conn:
        conn.execute("update walkforward_runs set walk_config = (select jsonb_object_agg('m' || g, g) "
                     "from generate_series(1, %s) g) where run_id = %s", (cap // 12, big))
    body = assert_envelope(client.get("/api/runs/compare", params={"run_ids": f"{a},{big}"}), 413)
    assert body["details"]["max_bytes"] == cap and body["details"]["size"] > cap
    assert_envelope(client.get("/api/runs/compare", params={"run_ids": f"{big},{a}", "format": "csv"}), 413)
    assert client.delete(f"/api/runs/{big}").status_code == 200
