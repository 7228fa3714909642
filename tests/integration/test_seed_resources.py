"""`make seed` is idempotent and leaves a populated API (two datasets, runs and simulations).

The seed records are shared (fixed ids and names); other tests (the schemathesis run, for one) may
add runs to the seed datasets, so this checks the seed's own records, not exact totals."""

import uuid

from stage1_local import seed


def test_seed_twice(client):
    seed.seed(client)
    second = seed.seed(client)
    assert sum("already there" in line for line in second) == 4
    for ds in seed.DATASETS:
        detail = client.get(f"/api/datasets/{ds.slug}").json()
        assert detail["ohlcv_rows"] == ds.bars and detail["ohlcv_measurement"] == f"{ds.slug}_ohlcv"
        assert detail["questdb_state"]["ohlcv"]["row_count"] == ds.bars
        assert detail["related_runs"] >= 1 and detail["related_simulations"] >= 1
        run = client.get(f"/api/runs/{uuid.uuid5(seed.NAMESPACE, f'{ds.slug}/run')}").json()
        assert run["fold_count"] == seed.FOLDS and run["prediction_rows"] > 0 and run["status"] == "COMPLETED"
        sim = client.get(f"/api/simulations/{uuid.uuid5(seed.NAMESPACE, f'{ds.slug}/simulation')}").json()
        assert sim["trade_count"] > 0 and sim["buckets"][0]["bucket_type"] == "all"
