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
