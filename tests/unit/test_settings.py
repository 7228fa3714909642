from pathlib import Path

from stage1.core.settings import load_settings


def test_environment_is_typed_and_wins_over_dotenv(tmp_path: Path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("# local\nSTAGE1_BUCKET=from-file\nSTAGE1_PG_POOL_MAX=9\nexport STAGE1_S3_REGION='eu-west-1'\n")
    settings = load_settings({"STAGE1_BUCKET": "from-env", "STAGE1_AUTH_ENABLED": "false"}, dotenv)
    assert settings.store.bucket == "from-env"
    assert settings.postgres.pg_pool_max == 9
    assert settings.store.s3_region == "eu-west-1"
    assert settings.auth.auth_enabled is False


def test_env_file_variable_names_the_dotenv(tmp_path: Path):
    file = tmp_path / "stack.env"
    file.write_text("STAGE1_QDB_HTTP_URL=http://127.0.0.1:19000\n")
    settings = load_settings({"STAGE1_ENV_FILE": str(file)})
    assert settings.questdb.qdb_http_url == "http://127.0.0.1:19000"


def test_redacted_hides_secrets():
    settings = load_settings({"STAGE1_ADMIN_SECRET": "s3cret", "STAGE1_S3_SECRET_KEY": "k"}, Path("/nonexistent"))
    shown = settings.redacted()
    assert shown["admin_secret"] == "***" and shown["s3_secret_key"] == "***"
    assert "s3cret" not in repr(shown)


# --- grouped by concern, validated at cold start, required where deployed (issue 12)

import ast  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

from stage1.core.settings import FIELD_GROUP, GROUPS, REQUIRED_DEPLOYED, Settings, SettingsError  # noqa: E402

NOWHERE = Path("/nonexistent")
DEPLOYED = {"STAGE1_PG_DSN": "postgresql://u:p@db.example:5432/stage1", "STAGE1_QDB_HTTP_URL": "https://qdb.example:9000",
            "STAGE1_BUCKET": "prod-uploads"}


def test_every_variable_keeps_its_flat_name_and_lands_in_one_group():
    env = {f"STAGE1_{f.upper()}": v for f, v in
           {"pg_pool_max": "7", "qdb_timeout": "3.5", "bucket": "b-one", "rate_limit_burst": "5", "log_level": "DEBUG",
            "job_lease_seconds": "9", "upload_max_parts": "10", "import_senders": "3", "query_max_rows": "11",
            "export_can_stream": "true"}.items()}
    s = load_settings(env, NOWHERE)
    assert (s.postgres.pg_pool_max, s.questdb.qdb_timeout) == (7, 3.5)
    assert (s.store.bucket, s.auth.rate_limit_burst) == ("b-one", 5)
    assert (s.service.log_level, s.jobs.job_lease_seconds, s.uploads.upload_max_parts) == ("DEBUG", 9, 10)
    assert (s.imports.import_senders, s.queries.query_max_rows, s.exports.export_can_stream) == (3, 11, True)
    assert len(FIELD_GROUP) == sum(len(g.__struct_fields__) for g in GROUPS.values())  # no name in two groups


@pytest.mark.parametrize("marker", [{"AWS_LAMBDA_FUNCTION_NAME": "stage1-datasets"}, {"STAGE1_ENV": "deployed"}])
def test_deployed_without_dsn_fails_naming_the_variable_instead_of_dialling_localhost(marker):
    # The old flat Settings answered postgresql://stage1@127.0.0.1:55432/stage1 here.
    with pytest.raises(SettingsError, match="STAGE1_PG_DSN") as err:
        load_settings({**marker, **{k: v for k, v in DEPLOYED.items() if k != "STAGE1_PG_DSN"}}, NOWHERE)
    assert "STAGE1_BUCKET" not in str(err.value)
    with pytest.raises(SettingsError, match="STAGE1_PG_DSN, STAGE1_QDB_HTTP_URL, STAGE1_BUCKET"):
        load_settings(dict(marker), NOWHERE)
    s = load_settings({**marker, **DEPLOYED}, NOWHERE)
    assert s.postgres.pg_dsn == DEPLOYED["STAGE1_PG_DSN"] and s.service.gateway_url == ""  # no localhost default
    assert set(REQUIRED_DEPLOYED) == {"pg_dsn", "qdb_http_url", "bucket"}


def test_local_stack_keeps_its_defaults():
    s = load_settings({}, NOWHERE)
    assert s.postgres.pg_dsn == "postgresql://stage1@127.0.0.1:55432/stage1"
    assert (s.questdb.qdb_http_url, s.store.bucket) == ("http://127.0.0.1:9000", "stage1-uploads")
    assert Settings() == s  # the Struct's own defaults are the local stack's


@pytest.mark.parametrize(("name", "value"), [
    ("STAGE1_PG_POOL_MAX", "0"), ("STAGE1_PG_POOL_MAX", "many"), ("STAGE1_QDB_HTTP_URL", "ftp://x"),
    ("STAGE1_PG_DSN", "127.0.0.1:5432"), ("STAGE1_S3_ENDPOINT", "minio:9000"), ("STAGE1_JOB_LEASE_SECONDS", "-1"),
    ("STAGE1_UPLOAD_MAX_PARTS", "20000"), ("STAGE1_AUTH_ENABLED", "perhaps"), ("STAGE1_LOG_LEVEL", "LOUD"),
    ("STAGE1_EXPORT_PART_BYTES", "1024"), ("STAGE1_BUCKET", "Bad_Bucket"),
])
def test_a_malformed_value_fails_the_cold_start_naming_its_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value}, NOWHERE)


def test_a_bad_secret_is_named_but_not_echoed():
    with pytest.raises(SettingsError, match="STAGE1_QDB_PG_READONLY_DSN") as err:
        load_settings({"STAGE1_QDB_PG_READONLY_DSN": "not a dsn hunter2"}, NOWHERE)
    assert "hunter2" not in str(err.value)


def test_of_builds_from_flat_names_but_settings_are_read_by_group_only():
    s = Settings.of(bucket="b-two", admin_secret_attempts_per_minute=2)
    assert s.store.bucket == "b-two" and s.auth.admin_secret_attempts_per_minute == 2
    for name in ("bucket", "no_such_setting"):  # the transition's flat aliases are gone
        with pytest.raises(AttributeError):
            getattr(s, name)


def _flat_uses(path: Path) -> list[str]:
    """`<x>.<field>` where x is get_settings() or a name bound to it / to a Settings argument."""
    tree = ast.parse(path.read_text())
    bound = {"settings"}
    for node in ast.walk(tree):
        # `x = get_settings()` or `x = given or get_settings()` binds the whole Settings to x; a group
        # (`x = get_settings().uploads`) is not the flat struct, so its fields are fine.
        if isinstance(node, ast.Assign) and any(
                isinstance(v, ast.Call) and ast.unparse(v.func).split(".")[-1] in ("get_settings", "load_settings")
                for v in (node.value.values if isinstance(node.value, ast.BoolOp) else [node.value])):
            bound |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in FIELD_GROUP:
            base = node.value
            name = ast.unparse(base)
            if (isinstance(base, ast.Call) and name.endswith("get_settings()")) or name in bound \
                    or name == "self.settings":
                found.append(f"{path}:{node.lineno}: {name}.{node.attr}")
    return found


def test_no_flat_settings_use_left_in_the_tree():
    repo = Path(__file__).resolve().parents[2]
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=repo, capture_output=True, text=True, check=True)
    found = [use for f in files.stdout.split() if not f.endswith("core/settings.py") and (repo / f).is_file()
             and f != "tests/unit/test_settings.py" for use in _flat_uses(repo / f)]
    assert not found, "read settings by group (get_settings().<group>.<field>):\n" + "\n".join(found)


def test_cold_start_of_a_function_fails_without_its_dsn():
    # A deployed handler's first get_settings() (configure_logging at the top of every handler).
    code = "from stage1.core.settings import get_settings; get_settings()"
    env = {"PATH": "/usr/bin:/bin", "AWS_LAMBDA_FUNCTION_NAME": "stage1-importer", "STAGE1_ENV_FILE": "/nonexistent"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "STAGE1_PG_DSN" in r.stderr
