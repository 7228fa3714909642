"""Migration runner: numbered `NNNN_name.up.sql` / `.down.sql` files in `migrations/`.

    python -m stage1_local.migrate up [--dry-run]        apply every pending migration
    python -m stage1_local.migrate down N [--dry-run]    revert the newest N applied migrations
    python -m stage1_local.migrate status                list migrations, applied or pending
    python -m stage1_local.migrate reset [--dry-run]     revert all, then apply all

Applied versions are recorded in `schema_migrations`. Each migration runs in its own
transaction together with its bookkeeping row, under an advisory lock so two runners never
interleave. `--dsn` overrides STAGE1_PG_DSN (e.g. to migrate RDS from a bastion).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg

from stage1.core.settings import get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$")
_LOCK_ID = 0x57A6E1  # pg_advisory_xact_lock key shared by all runners

_BOOKKEEPING = """
create table if not exists schema_migrations (
    version    integer primary key,
    name       text not null,
    applied_at timestamptz not null default now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    up: Path
    down: Path


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: dict[int, dict[str, Path | str]] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if not match:
            raise SystemExit(f"migrate: unexpected file name {path.name} (want NNNN_name.up|down.sql)")
        version, name, direction = int(match[1]), match[2], match[3]
        entry = found.setdefault(version, {"name": name})
        entry[direction] = path
    migrations = []
    for version, entry in sorted(found.items()):
        if "up" not in entry or "down" not in entry:
            raise SystemExit(f"migrate: {version:04d} needs both an up and a down file")
        migrations.append(Migration(version, str(entry["name"]), Path(entry["up"]), Path(entry["down"])))
    return migrations


def applied_versions(conn: psycopg.Connection) -> list[int]:
    conn.execute(_BOOKKEEPING)
    return [row[0] for row in conn.execute("select version from schema_migrations order by version")]


def _apply(conn: psycopg.Connection, migration: Migration, direction: str, dry_run: bool) -> None:
    path = migration.up if direction == "up" else migration.down
    label = f"{direction:>4} {migration.version:04d}_{migration.name}"
    if dry_run:
        print(f"{label} (dry run)\n{path.read_text().strip()}\n")
        return
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        conn.execute(path.read_text())
        if direction == "up":
            conn.execute("insert into schema_migrations (version, name) values (%s, %s)",
                         (migration.version, migration.name))
        else:
            conn.execute("delete from schema_migrations where version = %s", (migration.version,))
    print(label)


def up(conn: psycopg.Connection, migrations: list[Migration], dry_run: bool = False) -> int:
    done = set(applied_versions(conn))
    pending = [m for m in migrations if m.version not in done]
    for migration in pending:
        _apply(conn, migration, "up", dry_run)
    return len(pending)


def down(conn: psycopg.Connection, migrations: list[Migration], count: int, dry_run: bool = False) -> int:
    by_version = {m.version: m for m in migrations}
    newest = sorted(applied_versions(conn), reverse=True)[:count]
    for version in newest:
        if version not in by_version:
            raise SystemExit(f"migrate: applied version {version:04d} has no files here")
        _apply(conn, by_version[version], "down", dry_run)
    return len(newest)


def status(conn: psycopg.Connection, migrations: list[Migration]) -> list[tuple[Migration, bool]]:
    done = set(applied_versions(conn))
    return [(m, m.version in done) for m in migrations]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="migrate", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status", "reset"])
    parser.add_argument("count", nargs="?", type=int, help="with down: how many to revert")
    parser.add_argument("--dry-run", action="store_true", help="print the SQL, change nothing")
    parser.add_argument("--dsn", default=None)
    parser.add_argument("--dir", type=Path, default=MIGRATIONS_DIR)
    args = parser.parse_args(argv)
    migrations = discover(args.dir)
    dsn = args.dsn or get_settings().postgres.pg_dsn
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        print(f"migrate: cannot connect to Postgres: {exc}", file=sys.stderr)
        return 2
    with conn:
        if args.command == "up":
            print(f"{up(conn, migrations, args.dry_run)} migration(s) applied")
        elif args.command == "down":
            if args.count is None or args.count < 1:
                parser.error("down needs a count >= 1")
            print(f"{down(conn, migrations, args.count, args.dry_run)} migration(s) reverted")
        elif args.command == "reset":
            down(conn, migrations, len(migrations), args.dry_run)
            up(conn, migrations, args.dry_run)
        else:
            for migration, applied in status(conn, migrations):
                print(f"{'applied' if applied else 'pending':>8}  {migration.version:04d}_{migration.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
