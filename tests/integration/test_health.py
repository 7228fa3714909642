import json
import os
import subprocess
import sys


def test_liveness(client):
    r = client.get("/api/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_readiness_reports_every_service_ok(client):
    r = client.get("/api/healthz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok", "postgres": "ok", "questdb": "ok", "object_store": "ok"}


def test_unknown_route_is_an_enveloped_404(client):
    r = client.get("/api/no-such-thing")
    assert r.status_code == 404
    assert set(r.json()) == {"error", "details"}


def test_readiness_names_the_service_that_is_down():
    """A fresh process whose QuestDB address has nothing listening: 503 naming questdb only."""
    code = (
        "import json, sys\n"
        "from stage1_local.template import functions, load_handler\n"
        "h = load_handler(functions()['HealthFunction'])\n"
        "ev = json.load(open('tests/events/http_api_v2_get_health.json'))\n"
        "ev['rawPath'] = ev['requestContext']['http']['path'] = '/api/healthz'\n"
        "print(json.dumps(h(ev, None)))\n"
    )
    env = {**os.environ, "STAGE1_QDB_HTTP_URL": "http://127.0.0.1:1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    response = json.loads(out.stdout.strip().splitlines()[-1])
    assert response["statusCode"] == 503
    body = json.loads(response["body"])
    assert body["status"] == "degraded"
    assert body["postgres"] == "ok" and body["object_store"] == "ok"
    assert body["questdb"].startswith("questdb unavailable")
