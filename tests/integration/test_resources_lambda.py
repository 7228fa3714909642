"""The Lambda path of the issue-3 functions against the real databases: a recorded HttpApi v2
event through each Mangum handler, as API Gateway would invoke it."""

import json

import pytest

from stage1_local.template import functions, load_handler


@pytest.mark.parametrize(("function", "event_file", "key"), [
    ("DatasetsFunction", "http_api_v2_list_datasets.json", "datasets"),
    ("RunsFunction", "http_api_v2_list_runs.json", "runs"),
    ("SimulationsFunction", "http_api_v2_list_simulations.json", "simulations"),
])
def test_list_event_through_the_handler(event, function, event_file, key):
    recorded = event(event_file)
    response = load_handler(functions()[function])(recorded, None)
    assert response["statusCode"] == 200, response["body"][:500]
    body = json.loads(response["body"])
    cursor = {"next_cursor"} if key in ("runs", "simulations") else {"next_offset"}  # docs/resources.md
    assert set(body) == {key, "total", "limit", "offset"} | cursor and body["limit"] == 2
    assert len(body[key]) <= 2 and body["total"] >= len(body[key])
