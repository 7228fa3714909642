"""Every `stage1` command added for issue 14, run as a user runs it (the installed console script)
against the gateway: profiles, health, query, export, downloads, creates/updates/deletes, job control,
tokens, completion, output options after the subcommand, `-q`, exit codes."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
import stat
import subprocess

import pyarrow.parquet as pq
import pytest
from client_support import STAGE1, cancel_leftover_jobs, cli_env, new_job, unique_slug, write_ohlcv

from stage1_client import ApiError, Client

START = 1_704_067_200


@pytest.fixture(autouse=True)
def _tidy_jobs():
    yield
    cancel_leftover_jobs()


@pytest.fixture
def stage1(gateway_url, api_token, tmp_path):
    env = {**cli_env(gateway_url, api_token), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}

    def run(*args: str, env_over: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([STAGE1, *args], capture_output=True, text=True, timeout=120, input=stdin,
                              env={k: v for k, v in {**env, **(env_over or {})}.items() if v is not None})

    return run


@pytest.fixture
def dataset(gateway_url, api_token, tmp_path):
    slug = unique_slug("cliareas")
    with Client(gateway_url, api_token) as c:
        c.datasets.upsert({"dataset_slug": slug, "symbol": "BTC", "granularity": "1m"})
        job = c.uploads.wait(c.uploads.upload(write_ohlcv(tmp_path / "b.csv", 300, start=START), kind="ohlcv",
                                              dataset=slug))
        assert job.status == "COMPLETED"
        yield slug
        with contextlib.suppress(ApiError):
            c.datasets.delete(slug, cascade=True, drop_questdb=True)


def test_login_config_profile_logout(stage1, gateway_url, api_token, tmp_path):
    r = stage1("login", "--profile", "lab", "--url", gateway_url, "--token", api_token)
    assert r.returncode == 0, r.stderr
    path = tmp_path / "cfg" / "stage1" / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and api_token in path.read_text()
    # The profile alone reaches the gateway: no URL or token in the environment.
    bare = {"STAGE1_URL": None, "STAGE1_TOKEN": None}
    r = stage1("datasets", "list", "--limit", "1", "--profile", "lab", env_over=bare)
    assert r.returncode == 0, r.stderr
    r = stage1("config", "list", "--output", "json", env_over={**bare, "STAGE1_PROFILE": "lab"})
    doc = json.loads(r.stdout)
    assert doc["in_effect"] == {"url": gateway_url, "source": "profile lab"}
    assert doc["profiles"][0]["name"] == "lab" and api_token not in r.stdout  # masked
    r = stage1("login", "--profile", "bad", "--url", gateway_url, stdin="wrong-token\n")  # token on stdin
    assert r.returncode == 3, r.stderr  # 401: auth
    assert "bad" not in path.read_text()
    r = stage1("logout", "--profile", "lab")
    assert r.returncode == 0 and "lab" not in path.read_text()
    r = stage1("datasets", "list", "--profile", "lab", env_over=bare)
    assert r.returncode == 2 and "no profile 'lab'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    path.chmod(0o644)
    r = stage1("config", "list")
    assert r.returncode == 2 and "chmod 600" in r.stderr


def test_health_query_and_export(stage1, tmp_path):
    r = stage1("health", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["questdb"] == "ok"
    r = stage1("query", "select x, x * 2 y from long_sequence(3)", "--output", "csv")
    assert r.returncode == 0 and r.stdout.splitlines() == ["x,y", "1,2", "2,4", "3,6"]
    r = stage1("query", "select x from long_sequence(5)", "--limit", "2")
    assert r.returncode == 0 and "truncated at 2" in r.stderr and "│ 2 │" in r.stdout
    r = stage1("query", "-", stdin="select 7 seven")
    assert r.returncode == 0 and "seven" in r.stdout
    r = stage1("query", "drop table x")
    assert r.returncode == 1 and r.stderr.startswith("stage1: error: 400")
    r = stage1("export", "select x from long_sequence(1000)", "-o", str(tmp_path / "e.parquet"))
    assert r.returncode == 0, r.stderr
    assert pq.read_table(tmp_path / "e.parquet").num_rows == 1000
    r = stage1("export", "select x from long_sequence(10)", "-o", str(tmp_path / "e.csv"), "--mode", "job")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "e.csv").read_text().splitlines()[-1] == "10"


def test_dataset_update_download_and_delete(stage1, dataset, tmp_path):
    r = stage1("datasets", "update", dataset, "--symbol", "ETH", "--metadata", '{"venue": "x"}', "-q")
    assert r.returncode == 0, r.stderr
    r = stage1("datasets", "show", dataset, "--json")
    assert json.loads(r.stdout)["symbol"] == "ETH" and json.loads(r.stdout)["metadata"] == {"venue": "x"}
    r = stage1("ohlcv", dataset, "-o", str(tmp_path / "o.parquet"), "--start", str(START + 60))
    assert r.returncode == 0, r.stderr
    table = pq.read_table(tmp_path / "o.parquet")
    assert table.num_rows == 299 and "close" in table.column_names
    r = stage1("ohlcv", dataset, "-o", str(tmp_path / "o.csv"))
    assert r.returncode == 0 and len((tmp_path / "o.csv").read_text().splitlines()) == 301
    r = stage1("indicators", dataset, "-o", str(tmp_path / "i.csv"))
    # no indicator table: a 4xx, its error on one line (after the progress bar's last frame)
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1].startswith("stage1: error: 400")
    r = stage1("datasets", "delete", dataset, "--cascade", "--drop-questdb")
    assert r.returncode == 0, r.stderr
    r = stage1("datasets", "show", dataset)
    assert r.returncode == 4 and "404" in r.stderr


def test_run_and_simulation_create_from_files_then_delete(stage1, dataset, tmp_path):
    preds = tmp_path / "preds.csv"
    with open(preds, "w") as f:
        f.write("timestamp,bar_index,fold_number,prediction,target\n")
        for i in range(60):
            f.write(f"{START + i * 60},{i},0,{i / 60},{i % 2}\n")
    body = {"dataset_slug": dataset, "target_column": "up",
            "folds": [{"fold_number": 0, "train_start": START, "train_end": START + 3540, "test_start": START,
                       "test_end": START + 3540}]}
    (tmp_path / "run.json").write_text(json.dumps(body))
    r = stage1("runs", "create", str(tmp_path / "run.json"), "--predictions", str(preds), "-q")
    assert r.returncode == 0, r.stderr
    run_id = r.stdout.strip()
    r = stage1("runs", "show", run_id, "--json")
    assert json.loads(r.stdout)["status"] == "COMPLETED" and json.loads(r.stdout)["prediction_rows"] == 60
    other = stage1("runs", "create", str(tmp_path / "run.json"), "-q").stdout.strip()  # no predictions
    r = stage1("--output", "csv", "runs", "compare", run_id, other)  # the global --output reaches compare
    assert r.returncode == 0 and r.stdout.splitlines()[0] == f"key,section,differs,{run_id},{other}"
    trades = tmp_path / "trades.csv"
    trades.write_text("timestamp,side,entry_price,exit_price,quantity,pnl\n"
                      + "".join(f"{START + i * 60},long,100,{100 + i},1,{i}\n" for i in range(5)))
    (tmp_path / "sim.json").write_text(json.dumps({"run_id": run_id, "name": "cli sim"}))
    r = stage1("simulations", "create", str(tmp_path / "sim.json"), "--trades", str(trades), "--json")
    assert r.returncode == 0, r.stderr
    sim_id = json.loads(r.stdout)["simulation_id"]
    r = stage1("trades", sim_id, "-o", str(tmp_path / "t.csv"))
    assert r.returncode == 0 and len((tmp_path / "t.csv").read_text().splitlines()) == 6
    r = stage1("trades", sim_id, "-o", str(tmp_path / "t.parquet"))
    assert r.returncode == 0 and pq.read_table(tmp_path / "t.parquet").num_rows == 5
    r = stage1("simulations", "list", "--run", run_id, "--output", "csv")
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0][0] == "simulation_id" and rows[1][0] == sim_id and "[" not in r.stdout  # no rich markup
    assert stage1("simulations", "delete", sim_id).returncode == 0
    assert stage1("runs", "delete", run_id, "-q").stdout.strip() == run_id
    assert stage1("runs", "show", run_id).returncode == 4


def test_jobs_cancel_and_retry(stage1):
    job_id = new_job()
    r = stage1("jobs", "cancel", job_id, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "CANCELLED"
    r = stage1("jobs", "retry", job_id)
    assert r.returncode in (0, 1), r.stderr  # a test job type: retried to PENDING, or refused as a 4xx
    assert len(r.stderr.strip().splitlines()) == 1
    stage1("jobs", "cancel", job_id)


def test_tokens_create_list_revoke(stage1):
    r = stage1("tokens", "create", unique_slug("tok"), "--scope", "read")
    assert r.returncode == 0, r.stderr
    secret = r.stdout.strip()
    token_id = r.stderr.split()[1]
    r = stage1("tokens", "list", "-q", "--limit", "500")
    assert token_id in r.stdout.split()
    r = stage1("datasets", "list", "--limit", "1", env_over={"STAGE1_TOKEN": secret})
    assert r.returncode == 0, r.stderr
    r = stage1("datasets", "create", "x_not_allowed", env_over={"STAGE1_TOKEN": secret})
    assert r.returncode == 3, r.stderr  # read scope: 403 is an auth failure
    r = stage1("tokens", "revoke", token_id, "--json")
    assert json.loads(r.stdout)["status"] == "revoked"
    assert stage1("datasets", "list", env_over={"STAGE1_TOKEN": secret}).returncode == 3


def test_completion_scripts_and_options_anywhere(stage1):
    r = stage1("completion", "bash")
    assert r.returncode == 0 and "complete -o default -F _stage1 stage1" in r.stdout
    assert '"runs") words="' in r.stdout and "search" in r.stdout
    assert subprocess.run(["bash", "-n"], input=r.stdout, text=True).returncode == 0
    probe = r.stdout + ('COMP_WORDS=(stage1 runs se); COMP_CWORD=2; _stage1; echo "${COMPREPLY[@]}"\n'
                        'COMP_WORDS=(stage1 --json runs search --fi); COMP_CWORD=4; _stage1; echo "${COMPREPLY[@]}"\n')
    answers = subprocess.run(["bash"], input=probe, text=True, capture_output=True).stdout.splitlines()
    assert answers == ["search", "--filter"]
    r = stage1("completion", "zsh")
    assert r.returncode == 0 and "compdef _stage1 stage1" in r.stdout
    if shutil.which("zsh"):
        assert subprocess.run(["zsh", "-n"], input=r.stdout, text=True).returncode == 0
    before = stage1("--output", "json", "jobs", "list", "--limit", "1")
    after = stage1("jobs", "list", "--limit", "1", "--output", "json")
    assert before.returncode == after.returncode == 0
    assert json.loads(before.stdout)["total"] >= 0 and json.loads(after.stdout)["limit"] == 1
    assert stage1("jobs", "list", "--limit", "1", "--json").stdout.lstrip().startswith("{")
    r = stage1("runs", "list", "--url", "http://127.0.0.1:9")  # after the subcommand too; nothing listens
    assert r.returncode == 5 and "cannot reach http://127.0.0.1:9" in r.stderr
    r = stage1("runs", "list", "--output", "yaml")
    assert r.returncode == 2
