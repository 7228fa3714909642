"""The hostile identifier corpus (tests/hostile/identifiers.txt) through the gateway: every name in
every field that names a dataset or a QuestDB table. Each answer is a 400 or 409 with the error
envelope (a `refuse-table` name may be accepted as a dataset_slug, which is not a table name), never
a 5xx, and nothing is stored for a refused name. Names too long to list are generated here."""

from __future__ import annotations

import codecs
import json
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from resources_support import START, dataset

CORPUS = Path(__file__).parents[1] / "hostile" / "identifiers.txt"


def _cases() -> list[tuple[int, str, str]]:
    cases = []
    for number, raw in enumerate(CORPUS.read_text(encoding="ascii").split("\n"), start=1):
        if not raw.strip() or raw.startswith("#"):
            continue
        outcome, text = raw.split("\t", 1)
        assert outcome in ("refuse", "refuse-table"), f"identifiers.txt:{number}: {outcome!r}"
        cases.append((number, outcome, text))
    cases += [(0, "refuse", "a" * n) for n in (64, 100, 10_000)]
    cases.append((0, "refuse", "b" * 1_000_000))  # ~1 MB in one field: still a 400, not a 5xx or 413
    return cases


def _value(text: str, names: dict[str, str]):
    if text.startswith("json:"):
        return json.loads(text[5:])
    for key, name in names.items():
        text = text.replace("{" + key + "}", name)
    return codecs.decode(text, "unicode_escape") if "\\" in text else text


_PREDICTIONS = [{"timestamp": START, "fold_number": 0, "prediction": 0.5}]
_INLINE = {"kind": "raw", "data": "timestamp,v\n2024-01-01T00:00:00Z,1.0\n"}  # an inline import's JSON body


def _requests(value, target: dict, fresh: str) -> dict[str, tuple[str, str, dict]]:
    upload = {"filename": "x.csv", "size": 100}
    return {
        "dataset_slug": ("POST", "/api/datasets", {"dataset_slug": value}),
        "ohlcv_measurement": ("POST", "/api/datasets", {"dataset_slug": fresh, "ohlcv_measurement": value}),
        "indicator_measurement": ("POST", "/api/datasets", {"dataset_slug": fresh, "indicator_measurement": value}),
        "run.dataset_slug": ("POST", "/api/runs", {"dataset_slug": value, "predictions": _PREDICTIONS}),
        "run.prediction_measurement": ("POST", "/api/runs", {"dataset_id": target["dataset_id"],
                                                             "prediction_measurement": value,
                                                             "predictions": _PREDICTIONS}),
        "run.registration": ("POST", "/api/runs", {"dataset_id": target["dataset_id"],
                                                   "prediction_measurement": value}),
        "upload.measurement": ("POST", "/api/uploads", {**upload, "kind": "predictions", "measurement": value}),
        "dataset_upload.measurement": ("POST", f"/api/datasets/{target['dataset_id']}/uploads",
                                       {**upload, "kind": "ohlcv", "measurement": value}),
        "import.measurement": ("POST", "/api/questdb/import", {**_INLINE, "measurement": value}),
        "import_async.measurement": ("POST", "/api/questdb/import/async", {**_INLINE, "measurement": value}),
    }


@pytest.fixture(scope="module")
def world(gateway_url, api_headers):
    with httpx.Client(base_url=gateway_url, headers=api_headers, timeout=60) as c:
        suffix = uuid.uuid4().hex[:8]
        with dataset(c, f"hid_other_{suffix}") as other, dataset(c, f"hid_target_{suffix}") as target:
            run = c.post("/api/runs", json={"dataset_id": other["dataset_id"], "predictions": _PREDICTIONS})
            assert run.status_code == 201, run.text
            names = {"other_ohlcv": other["ohlcv_measurement"], "other_ind": other["indicator_measurement"],
                     "other_run": run.json()["prediction_measurement"],
                     "OTHER_OHLCV": other["ohlcv_measurement"].upper()}
            yield c, names, target
            c.delete(f"/api/runs/{run.json()['run_id']}")


def test_every_hostile_identifier_is_refused_in_every_field(world):
    c, names, target = world
    tally: Counter = Counter()
    wrong = []
    for number, outcome, text in _cases():
        value = _value(text, names)
        fresh = f"hid_fresh_{uuid.uuid4().hex[:8]}"
        for field, (method, path, body) in _requests(value, target, fresh).items():
            r = c.request(method, path, json=body)
            tally[r.status_code] += 1
            label = f"identifiers.txt:{number} {text[:40]!r} as {field}: HTTP {r.status_code} {r.text[:160]}"
            accepted = r.status_code in (200, 201, 202)
            if accepted:  # clean up whatever was stored before judging it
                created = r.json()
                if path == "/api/datasets":
                    c.delete(f"/api/datasets/{created['dataset_id']}", params={"cascade": "true",
                                                                                "drop_questdb": "true"})
                elif "run_id" in created:
                    c.delete(f"/api/runs/{created['run_id']}")
            allowed = accepted and outcome == "refuse-table" and field == "dataset_slug"
            envelope = not accepted and r.status_code in (400, 409) and set(r.json()) == {"error", "details"}
            if not (allowed or envelope):
                wrong.append(label)
            if r.status_code in (400, 409) and path == "/api/datasets":
                assert c.get(f"/api/datasets/{fresh}").status_code == 404, label  # nothing stored
    total = sum(tally.values())
    fields = len(_requests("", target, ""))
    print(f"\nhostile identifiers: {len(_cases())} names x {fields} fields = {total} requests; statuses {dict(tally)}")
    assert wrong == [], "\n".join(wrong)
