"""The staging table into its target (`imports.core.copy_into`), against the real QuestDB: a target
that does not exist yet becomes the staging table (RENAME, no second copy of the rows); an existing
one gets the rows in one INSERT ... SELECT; first imports racing for one new target end with the
exact union (the rename of the loser is refused and it copies)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from imports_support import T0, count, drop, ohlcv_csv

from stage1.core.questdb import get_questdb
from stage1.imports.core import copy_into, import_file, wait_applied
from stage1.imports.formats import Source
from stage1.timeseries.kinds import Kind, ensure_table


def _staged(name: str, rows: int, start: int) -> str:
    ensure_table(Kind.OHLCV, name, "1m")
    import_file(Source.from_bytes(ohlcv_csv(rows, start=start)), Kind.OHLCV, name)
    wait_applied(name)
    return name


def _create(target: str):
    return lambda: ensure_table(Kind.OHLCV, target, "1m")


def test_a_new_target_is_the_staging_table_renamed(unique):
    target, staging = f"zz_pub_{unique}", f"zz_pub_{unique}__s1"
    try:
        _staged(staging, 500, T0)
        assert copy_into(staging, target, timeout=60, create=_create(target)) == "renamed"
        assert count(target) == 500
        assert not get_questdb().table_exists(staging)
        info = get_questdb().exec(f"select walEnabled, dedup, partitionBy, designatedTimestamp from tables() "
                                  f"where table_name = '{target}'").dataset  # noqa: S608 - test names
        assert info == [[True, True, "MONTH", "timestamp"]]
    finally:
        drop(target)
        drop(staging)


def test_an_existing_target_gets_the_rows_copied_and_deduplicated(unique):
    target, staging = f"zz_pub_{unique}", f"zz_pub_{unique}__s2"
    try:
        _staged(target, 300, T0)
        _staged(staging, 300, T0 + 60 * 200)  # 100 rows overlap
        assert copy_into(staging, target, timeout=60, create=_create(target)) == "copied"
        wait_applied(target)
        assert count(target) == 500
        assert count(staging) == 300  # the caller drops it
    finally:
        drop(target)
        drop(staging)


def test_first_imports_racing_for_one_new_target_end_with_the_exact_union(unique):
    """Four stagings, each overlapping the next by 100 rows, published at once into a target that
    does not exist: one is renamed, the others are copied in (union 4 × 400 − 3 × 100 = 1,300)."""
    target = f"zz_pub_{unique}"
    stagings = [_staged(f"zz_pub_{unique}__r{k}", 400, T0 + 60 * 300 * k) for k in range(4)]
    try:
        with ThreadPoolExecutor(4) as pool:
            how = list(pool.map(lambda s: copy_into(s, target, timeout=60, create=_create(target)), stagings))
        assert sorted(how) == ["copied", "copied", "copied", "renamed"]
        wait_applied(target)
        assert count(target) == 1_300
    finally:
        drop(target)
        for name in stagings:
            drop(name)
