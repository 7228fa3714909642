"""The bootstrap token of `make up`: kept while valid, replaced when revoked, stored 0600 beside the
other local secrets without disturbing them."""

import httpx

from stage1_local.bootstrap import KEY, ensure_token, read_value, write_value


def test_kept_while_valid_and_replaced_when_revoked(tmp_path, gateway_url, client):
    secrets = tmp_path / "secrets.env"
    secrets.write_text("STAGE1_PG_PASSWORD=x\nSTAGE1_ADMIN_SECRET=y\n")
    first, minted = ensure_token(secrets)
    assert minted and read_value(secrets, KEY) == first
    assert ensure_token(secrets) == (first, False)
    assert secrets.read_text().startswith("STAGE1_PG_PASSWORD=x\nSTAGE1_ADMIN_SECRET=y\n")
    assert secrets.stat().st_mode & 0o777 == 0o600

    r = httpx.get(f"{gateway_url}/api/auth/tokens", headers={"X-Stage1-Token": first})
    assert r.status_code == 200, r.text
    me = next(t for t in client.get("/api/auth/tokens", params={"limit": 1000}).json()["items"]
              if t["token_prefix"] == first[:10])
    assert me["scopes"] == ["read", "write", "admin"] and me["expires_at"] is None
    client.delete(f"/api/auth/tokens/{me['token_id']}")

    second, minted = ensure_token(secrets)
    assert minted and second != first and read_value(secrets, KEY) == second
    assert secrets.read_text().count(f"{KEY}=") == 1


def test_write_value_replaces_only_its_line(tmp_path):
    path = tmp_path / "s.env"
    write_value(path, "A", "1")
    write_value(path, "B", "2")
    write_value(path, "A", "3")
    assert path.read_text() == "B=2\nA=3\n"
