"""Each issue-3 function's Lambda handler (Mangum) serves a recorded HttpApi v2 event: routing,
validation and the error envelope work without any backing service (bad input never reaches one)."""

import json

import pytest

from stage1_local.template import functions, load_handler

CASES = [
    ("DatasetsFunction", "http_api_v2_get_dataset_bad_ref.json", "dataset_id"),
    ("RunsFunction", "http_api_v2_get_run_bad_uuid.json", "run_id"),
    ("SimulationsFunction", "http_api_v2_post_simulation_bad_body.json", "problems"),
]


@pytest.mark.parametrize(("function", "event_file", "detail"), CASES)
def test_handler_serves_a_recorded_event(event, function, event_file, detail):
    recorded = event(event_file)
    response = load_handler(functions()[function])(recorded, None)
    assert response["statusCode"] == 400
    assert response["headers"]["content-type"].startswith("application/json")
    assert response["headers"]["x-request-id"] == recorded["requestContext"]["requestId"]
    body = json.loads(response["body"])
    assert set(body) == {"error", "details"} and detail in json.dumps(body["details"])


@pytest.mark.parametrize("function", ["DatasetsFunction", "RunsFunction", "SimulationsFunction"])
def test_api_functions_import_no_heavy_libraries(function):
    """The API functions stay small: no pyarrow, pandas, numpy or questdb client (checked in a
    fresh interpreter, since this test process may have imported them for other tests)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from stage1_local.template import functions, load_handler\n"
        f"load_handler(functions()[{function!r}])\n"
        "print(sorted(m for m in ('pyarrow', 'pandas', 'numpy', 'questdb') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_openapi_documents_the_contract_fields():
    """The spec is generated from the handlers' types; spot-check the contract's names in it."""
    from stage1_local.template import load_app

    datasets = load_app(functions()["DatasetsFunction"]).openapi_schema.to_schema()
    runs = load_app(functions()["RunsFunction"]).openapi_schema.to_schema()
    sims = load_app(functions()["SimulationsFunction"]).openapi_schema.to_schema()
    schemas = {**datasets["components"]["schemas"], **runs["components"]["schemas"], **sims["components"]["schemas"]}
    assert {"ohlcv_first_ts", "questdb_state", "related_runs", "links"} <= set(schemas["Dataset"]["properties"])
    assert {"folds", "walk_config", "hyperparameters", "summary_metrics"} <= set(schemas["RunDetail"]["properties"])
    assert {"run_id", "prediction_measurement", "questdb_rows_written"} <= set(schemas["RunCreated"]["properties"])
    assert {"bar_timestamp", "side", "entry_price", "exit_price", "quantity", "pnl", "return_pct"} <= set(
        schemas["Trade"]["properties"])
    assert "/api/runs/{run_id}/predictions" in runs["paths"]
    sort = next(p for p in datasets["paths"]["/api/datasets"]["get"]["parameters"] if p["name"] == "sort")
    assert "-created_at" in json.dumps(sort)
