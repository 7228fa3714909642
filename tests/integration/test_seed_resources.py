"""`make seed` is idempotent and leaves a populated API (two datasets, runs and simulations)."""

from stage1_local import seed


def test_seed_twice(client):
    seed.seed(client)
    second = seed.seed(client)
    assert sum("already there" in line for line in second) == 4
    for ds in seed.DATASETS:
        detail = client.get(f"/api/datasets/{ds.slug}").json()
        assert detail["ohlcv_rows"] == ds.bars and detail["related_runs"] == 1 and detail["related_simulations"] == 1
        assert detail["questdb_state"]["ohlcv"]["row_count"] == ds.bars
        runs = client.get(f"/api/datasets/{ds.slug}/runs").json()["runs"]
        assert [r["fold_count"] for r in runs] == [seed.FOLDS] and runs[0]["prediction_rows"] > 0
        sims = client.get("/api/simulations", params={"dataset_id": ds.slug}).json()["simulations"]
        assert len(sims) == 1 and sims[0]["trade_count"] > 0
