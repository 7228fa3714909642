"""`stage1`: the command line of the Stage1 API (docs/client.md).

    stage1 datasets list                          stage1 jobs watch JOB_ID
    stage1 runs show RUN_ID                       stage1 predictions RUN_ID -o preds.parquet
    stage1 upload bars.csv --dataset btc25_3 --kind ohlcv

Configuration: `--url` / `STAGE1_URL` (or `STAGE1_GATEWAY_URL`), `--token` / `STAGE1_TOKEN`; what
the environment lacks is read from the file named by `STAGE1_ENV_FILE` (the local stack's).
Tables and progress bars are drawn with rich (the `cli` extra); `--json` prints the API's JSON.
Exit codes (stage1_client.errors): 0 success; 1 an API 4xx, or a job that ended FAILED/CANCELLED;
2 bad usage or config; 3 auth (401/403); 4 not found; 5 server-side (5xx) or unreachable;
6 gave up waiting (`--wait`); 130 interrupted. Errors are one line on stderr.

Imports stay light: rich, the client and the schemas load only when a command needs them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from stage1_client.cli_output import _bytes_progress, _compact, _consoles, _kv, _num, _print_json, _table, _ts
from stage1_client.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from rich.console import Console

    from stage1_client.api import Client
    from stage1_wire.jobs import JobOut

KINDS = ("ohlcv", "indicators", "predictions", "trades")


class Failed(Exception):  # noqa: N818 - an outcome carried to main()
    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stage1", description="Stage1 data service client.",
                                epilog="Environment: STAGE1_URL (or STAGE1_GATEWAY_URL), STAGE1_TOKEN, "
                                       "STAGE1_ENV_FILE. See docs/client.md.")
    from stage1_client import cli_commands

    cli_commands.add_global_options(p, suppress=False)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    ds = sub.add_parser("datasets", help="list or show datasets").add_subparsers(dest="action", required=True)
    x = ds.add_parser("list", help="datasets, newest first")
    x.add_argument("--symbol")
    x.add_argument("--granularity")
    x.add_argument("--search")
    _paging(x)
    ds.add_parser("show", help="one dataset (UUID or slug) with its QuestDB state").add_argument("ref")
    x = ds.add_parser("create", help="create (or update) a dataset by slug; its tables come with uploads")
    x.add_argument("slug", help="1-63 characters from [a-z0-9_]")
    x.add_argument("--symbol")
    x.add_argument("--granularity", help="bar size, e.g. 1m, 1h, 1d")
    x.add_argument("--source", default="cli")

    runs = sub.add_parser("runs", help="list or show walk-forward runs").add_subparsers(dest="action", required=True)
    x = runs.add_parser("list", help="runs, newest first")
    x.add_argument("--dataset", help="dataset UUID or slug")
    x.add_argument("--status", choices=("PENDING", "RUNNING", "COMPLETED", "FAILED"))
    x.add_argument("--search")
    _paging(x)
    runs.add_parser("show", help="one run with its folds").add_argument("run_id")
    x = runs.add_parser("search", help="runs matching a filter expression, ranked (docs/resources.md)")
    _search_args(x, "e.g. \"summary_metrics.sharpe > 1.2 and status = 'COMPLETED'\"", "-summary_metrics.sharpe")
    x = runs.add_parser("compare", help="2-50 runs side by side: every parameter and metric, differing keys marked")
    x.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    x.add_argument("--output", choices=("table", "csv", "json"), default="table",
                   help="table (default; differing rows highlighted), csv or json (the API's)")
    x.add_argument("--differing", action="store_true", help="only the keys whose values differ")

    sims = sub.add_parser("simulations", help="list or show simulations").add_subparsers(dest="action", required=True)
    x = sims.add_parser("list", help="simulations, newest first")
    x.add_argument("--run", help="run UUID")
    x.add_argument("--dataset", help="dataset UUID or slug")
    _paging(x)
    sims.add_parser("show", help="one simulation with its trade buckets").add_argument("simulation_id")
    x = sims.add_parser("search", help="simulations matching a filter expression, ranked (docs/resources.md)")
    _search_args(x, "e.g. \"summary_metrics.pnl > 0 and config.fee_bps = 5\"", "-summary_metrics.pnl")

    jobs = sub.add_parser("jobs", help="list, show or watch jobs").add_subparsers(dest="action", required=True)
    x = jobs.add_parser("list", help="jobs, newest first")
    x.add_argument("--status", choices=("PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"))
    x.add_argument("--type", dest="job_type")
    _paging(x, limit=50)
    jobs.add_parser("show", help="one job").add_argument("job_id")
    x = jobs.add_parser("watch", help="follow a job to its end (exit 0 only for COMPLETED)")
    x.add_argument("job_id")
    x.add_argument("--wait", type=float, default=None, metavar="SECONDS", help="give up after this long (exit 3)")

    x = sub.add_parser("upload", help="upload a file and follow its import (exit 0 only for COMPLETED)")
    x.add_argument("file")
    x.add_argument("--dataset", required=True, help="dataset slug or UUID")
    x.add_argument("--kind", required=True, choices=KINDS)
    x.add_argument("--measurement", help="target table (default: the dataset's table for ohlcv/indicators)")
    x.add_argument("--no-wait", action="store_true", help="return after the transfer, print the job id")
    x.add_argument("--wait", type=float, default=None, metavar="SECONDS", help="give up after this long (exit 3)")
    x.add_argument("--chunk-mb", type=float, default=None, metavar="MB",
                   help="CSV chunk size (default 32; files above 128 MiB are chunked; 0: never chunk)")
    x.add_argument("--no-resume", action="store_true",
                   help="start a chunked or multipart upload again instead of resuming it")

    x = sub.add_parser("predictions", help="download a run's predictions (CSV or Parquet)")
    x.add_argument("run_id")
    x.add_argument("-o", "--output", required=True, help="file to write (.parquet → Parquet)")
    x.add_argument("--format", choices=("csv", "parquet"), help="default: from the file name")
    x.add_argument("--fold", type=int, help="only this fold")
    cli_commands.add_parsers(sub, {"datasets": ds, "runs": runs, "simulations": sims, "jobs": jobs})
    for _path, node in cli_commands.leaves(p)[1:]:  # the global options after any subcommand too
        cli_commands.add_global_options(node, suppress=True)
    return p


def _search_args(parser: argparse.ArgumentParser, example: str, sort: str) -> None:
    parser.add_argument("--filter", help=f"filter expression, {example}")
    parser.add_argument("--sort", help=f"field or -field (descending; write --sort={sort}); default -created_at")
    parser.add_argument("--dataset", help="dataset UUID or slug")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--cursor", help="the next_cursor a previous search printed")


def _paging(parser: argparse.ArgumentParser, limit: int = 100) -> None:
    parser.add_argument("--limit", type=int, default=limit)
    parser.add_argument("--offset", type=int, default=0)


# ---------------------------------------------------------------- formatting helpers
def _print_page(out: Console, args: argparse.Namespace, page: Any, title: str, columns: list[str],
                rows: list[list[Any]]) -> int:
    """A list command's answer: the API's JSON page with `--json`, ids with `-q`, CSV with `--output csv`,
    else a table with its place in the list."""
    from stage1_client.cli_commands import emit_rows

    if not args.json and emit_rows(args, columns, rows):
        return EXIT_OK
    if args.json:
        _print_json(page)
    else:
        out.print(_table(title, columns, rows, caption=_page_caption(page.total, page.offset, len(rows))))
    return EXIT_OK


def _print_search(out: Console, args: argparse.Namespace, page: Any, title: str, columns: list[str],
                  rows: list[list[Any]]) -> int:
    """A search's answer: the JSON page with `--json`, else a table and the cursor of the next page."""
    from stage1_client.cli_commands import emit_rows

    if not args.json and emit_rows(args, columns, rows):
        return EXIT_OK
    if args.json:
        _print_json(page)
        return EXIT_OK
    more = f"; next page: --cursor {page.next_cursor}" if page.next_cursor else ""
    out.print(_table(f"{title} ({args.sort or '-created_at'})", columns, rows,
                     caption=f"{len(rows):,} of {page.total:,} matching{more}"))
    return EXIT_OK


def _page_caption(total: int, offset: int, shown: int) -> str:
    if not shown:
        return f"{total:,} in all"
    return f"{offset + 1:,}-{offset + shown:,} of {total:,}"


# ---------------------------------------------------------------- commands
def cmd_datasets(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.action == "list":
        page = client.datasets.list(symbol=args.symbol, granularity=args.granularity, search=args.search,
                                    limit=args.limit, offset=args.offset)
        rows = [[d.dataset_slug, d.symbol, d.granularity, _num(d.ohlcv_rows), _num(d.indicator_rows),
                 _ts(d.ohlcv_first_ts), _ts(d.ohlcv_last_ts), d.related_runs, d.related_simulations,
                 _ts(d.updated_at)] for d in page.datasets]
        return _print_page(out, args, page, "Datasets", ["slug", "symbol", "granularity", "ohlcv rows",
                                                          "indicator rows", "first bar", "last bar", "runs",
                                                          "sims", "updated"], rows)
    if args.action == "create":
        body = {"dataset_slug": args.slug, "symbol": args.symbol, "granularity": args.granularity,
                "source": args.source}
        d = client.datasets.upsert({k: v for k, v in body.items() if v is not None})
        if args.json:
            _print_json(d)
        else:
            err.print(f"dataset {d.dataset_slug} ({d.dataset_id}): tables {d.ohlcv_measurement}, "
                      f"{d.indicator_measurement}", highlight=False)
        return EXIT_OK
    d = client.datasets.get(args.ref)
    if args.json:
        _print_json(d)
        return EXIT_OK
    out.print(_kv(f"Dataset {d.dataset_slug}", [
        ("dataset_id", d.dataset_id), ("symbol", d.symbol), ("granularity", d.granularity), ("source", d.source),
        ("ohlcv", f"{d.ohlcv_measurement}  {_num(d.ohlcv_rows)} rows  "
                  f"{_ts(d.ohlcv_first_ts)} → {_ts(d.ohlcv_last_ts)}"),
        ("indicators", f"{d.indicator_measurement}  {_num(d.indicator_rows)} rows  "
                       f"{_ts(d.indicator_first_ts)} → {_ts(d.indicator_last_ts)}"),
        ("related", f"{d.related_runs} runs, {d.related_simulations} simulations"),
        ("metadata", _compact(d.metadata, 200)), ("created", _ts(d.created_at)), ("updated", _ts(d.updated_at)),
    ]))
    if d.questdb_state is not None:
        rows = []
        for role, state in (("ohlcv", d.questdb_state.ohlcv), ("indicator", d.questdb_state.indicator)):
            rows.append([role, state.name, "yes" if state.exists else "no", _num(state.row_count),
                         _ts(state.first_ts), _ts(state.last_ts), state.partition_by or "",
                         "" if state.wal_enabled is None else ("yes" if state.wal_enabled else "no"),
                         state.error or ""])
        out.print(_table("QuestDB", ["table", "name", "exists", "rows", "first", "last", "partition", "wal",
                                     "error"], rows))
    return EXIT_OK


def cmd_runs(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.action == "list":
        page = client.runs.list(dataset=args.dataset, status=args.status, search=args.search, limit=args.limit,
                                offset=args.offset)
        rows = [[r.run_id, r.dataset_slug, r.prediction_measurement, _status(r.status), r.fold_count,
                 _num(r.prediction_rows), r.target_column, _ts(r.completed_at or r.created_at)] for r in page.runs]
        return _print_page(out, args, page, "Walk-forward runs", ["run_id", "dataset", "measurement", "status",
                                                                   "folds", "rows", "target", "completed"], rows)
    if args.action == "compare":
        return _compare(client, args, out)
    if args.action == "search":
        page = client.runs.search(filter=args.filter, sort=args.sort, dataset=args.dataset, limit=args.limit,
                                  cursor=args.cursor)
        rows = [[n, r.run_id, r.dataset_slug, r.prediction_measurement, _status(r.status), r.fold_count,
                 _ts(r.completed_at or r.created_at)] for n, r in enumerate(page.runs, start=1)]
        return _print_search(out, args, page, "Runs", ["#", "run_id", "dataset", "measurement", "status", "folds",
                                                        "completed"], rows)
    r = client.runs.get(args.run_id)
    if args.json:
        _print_json(r)
        return EXIT_OK
    out.print(_kv(f"Run {r.run_id}", [
        ("dataset", f"{r.dataset_slug} ({r.dataset_id})"), ("status", _status(r.status)),
        ("error", r.error), ("measurement", f"{r.prediction_measurement}  {_num(r.prediction_rows)} rows"),
        ("target", r.target_column), ("features", ", ".join(r.feature_columns)),
        ("thresholds", ", ".join(r.threshold_columns)), ("walk_config", _compact(r.walk_config, 200)),
        ("hyperparameters", _compact(r.hyperparameters, 200)), ("summary", _compact(r.summary_metrics, 200)),
        ("started", _ts(r.started_at)), ("completed", _ts(r.completed_at)),
    ]))
    rows = [[f.fold_number, _ts(f.train_start), _ts(f.train_end), _ts(f.test_start), _ts(f.test_end),
             _num(f.samples_train), _num(f.samples_test), _compact(f.thresholds, 40), _compact(f.metrics, 60)]
            for f in r.folds]
    out.print(_table("Folds", ["#", "train start", "train end", "test start", "test end", "train rows", "test rows",
                               "thresholds", "metrics"], rows))
    return EXIT_OK


def _compared(value: Any) -> str:
    """A compared value: exact enough to see why two runs differ (a run lacking the key: empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, int):
        return str(value)
    return _compact(value, 40)


def _compare(client: Client, args: argparse.Namespace, out: Console) -> int:
    """`stage1 runs compare A B C`: rows are keys, columns runs; a `*` and colour mark the keys that differ."""
    if args.output == "table" and getattr(args, "output_format", None):  # `stage1 --output csv runs compare`
        args.output = args.output_format
    if args.output == "csv":
        sys.stdout.write(client.runs.compare_csv(args.run_ids))
        return EXIT_OK
    table = client.runs.compare(args.run_ids)
    if args.json or args.output == "json":
        _print_json(table)
        return EXIT_OK
    from rich.table import Table
    from rich.text import Text  # keys and values are data: never rich markup

    view = Table(title=f"{len(table.runs)} runs: {table.differing} of {table.total} keys differ",
                 header_style="bold", title_justify="left")
    view.add_column("")
    view.add_column("key", overflow="fold")
    for run in table.runs:
        view.add_column(Text(f"{str(run.run_id)[:8]}\n{run.dataset_slug}\n{run.status}"), overflow="fold")
    for row in table.rows:
        if args.differing and not row.differs:
            continue
        view.add_row("*" if row.differs else "", Text(row.key), *[Text(_compared(v)) for v in row.values],
                     style="bold yellow" if row.differs else None)
    out.print(view)
    return EXIT_OK


def cmd_simulations(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.action == "list":
        page = client.simulations.list(run=args.run, dataset=args.dataset, limit=args.limit, offset=args.offset)
        rows = [[s.simulation_id, s.name, s.dataset_slug, s.run_id or "", _status(s.status), _num(s.trade_count),
                 _ts(s.created_at)] for s in page.simulations]
        return _print_page(out, args, page, "Simulations", ["simulation_id", "name", "dataset", "run_id",
                                                             "status", "trades", "created"], rows)
    if args.action == "search":
        page = client.simulations.search(filter=args.filter, sort=args.sort, dataset=args.dataset,
                                         limit=args.limit, cursor=args.cursor)
        rows = [[n, s.simulation_id, s.name, s.dataset_slug, _status(s.status), _num(s.trade_count),
                 _compact(s.summary_metrics, 60)] for n, s in enumerate(page.simulations, start=1)]
        return _print_search(out, args, page, "Simulations", ["#", "simulation_id", "name", "dataset", "status",
                                                               "trades", "summary"], rows)
    s = client.simulations.get(args.simulation_id)
    if args.json:
        _print_json(s)
        return EXIT_OK
    out.print(_kv(f"Simulation {s.simulation_id}", [
        ("name", s.name), ("dataset", f"{s.dataset_slug} ({s.dataset_id})"), ("run", s.run_id),
        ("status", _status(s.status)), ("error", s.error), ("trades", _num(s.trade_count)),
        ("config", _compact(s.config, 200)), ("summary", _compact(s.summary_metrics, 200)),
        ("started", _ts(s.started_at)), ("completed", _ts(s.completed_at)),
    ]))
    rows = [[b.bucket_type, b.bucket_key, _num(b.trade_count), _num(b.win_count), f"{b.win_rate:.1%}",
             _num(b.total_pnl), _num(b.mean_pnl), "" if b.mean_return_pct is None else _num(b.mean_return_pct)]
            for b in s.buckets]
    out.print(_table("Trade buckets", ["type", "key", "trades", "wins", "win rate", "total pnl", "mean pnl",
                                       "mean return %"], rows))
    return EXIT_OK


def _status(status: str) -> str:
    color = {"COMPLETED": "green", "FAILED": "red", "CANCELLED": "yellow", "RUNNING": "cyan"}.get(status)
    return f"[{color}]{status}[/]" if color else status


def _job_rows(job: JobOut) -> list[tuple[str, Any]]:
    progress = f"{job.progress:,}" + (f" / {job.total:,}" if job.total is not None else "")
    return [("job_id", job.job_id), ("type", job.job_type), ("status", _status(job.status)),
            ("progress", progress), ("attempts", job.attempts), ("error", job.error),
            ("result", _compact(job.result, 400)), ("created", _ts(job.created_at)),
            ("started", _ts(job.started_at)), ("updated", _ts(job.updated_at)), ("completed", _ts(job.completed_at))]


def cmd_jobs(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.action == "list":
        page = client.jobs.list(status=args.status, job_type=args.job_type, limit=args.limit, offset=args.offset)
        rows = [[j.job_id, j.job_type, _status(j.status),
                 f"{j.progress:,}" + (f"/{j.total:,}" if j.total is not None else ""), j.attempts,
                 _ts(j.created_at), _ts(j.updated_at), _compact(j.error, 50)] for j in page.items]
        return _print_page(out, args, page, "Jobs", ["job_id", "type", "status", "progress", "attempts",
                                                      "created", "updated", "error"], rows)
    if args.action == "show":
        job = client.jobs.get(args.job_id)
        if args.json:
            _print_json(job)
        else:
            out.print(_kv(f"Job {job.job_id}", _job_rows(job)))
        return EXIT_OK
    job = _follow(client, args, err, lambda on_update: client.jobs.watch(
        args.job_id, on_update=on_update, timeout=args.wait, use_events=not args.no_events), title="job")
    return _finish(job, args, out, err)


def _finish(job: JobOut, args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.json:
        _print_json(job)
    if job.status == "COMPLETED":
        err.print(f"[green]job {job.job_id} COMPLETED[/]: {job.progress:,} rows", highlight=False)
        return EXIT_OK
    raise Failed(f"job {job.job_id} {job.status}: {job.error or 'no error text'}")


def _row_progress(err: Console) -> Any:
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.completed:,.0f}{task.fields[of]} rows"), TextColumn("{task.fields[rate]}"),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=err)


def _follow(client: Client, args: argparse.Namespace, err: Console, run: Any, title: str) -> JobOut:
    """Run `run(on_update)` under a rows progress bar."""
    with _row_progress(err) as progress:
        task = progress.add_task(title, total=None, of="", rate="", status="", start=True)
        first = [time.monotonic(), 0]

        def on_update(job: JobOut) -> None:
            elapsed = time.monotonic() - first[0]
            rate = (job.progress - first[1]) / elapsed if elapsed > 0.5 and job.progress > first[1] else 0
            total = job.total if job.total else None
            if job.status == "COMPLETED" and total is None:
                total = job.progress or 1
            progress.update(task, completed=job.progress, total=total, status=job.status,
                            of=f" / {job.total:,}" if job.total else "",
                            rate=f"{rate:,.0f} rows/s" if rate else "",
                            description=f"{title} {job.job_id[:8]}")

        return run(on_update)


def cmd_upload(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    from pathlib import Path

    from stage1_client.errors import ApiError

    path = Path(args.file)
    with _bytes_progress(err) as progress:
        size = path.stat().st_size if path.is_file() else None
        task = progress.add_task(f"upload {path.name}", total=size)
        started = time.monotonic()
        try:
            chunking = {} if args.chunk_mb is None else {"chunk_bytes": int(args.chunk_mb * 1024**2),
                                                            "chunk_threshold": int(args.chunk_mb * 1024**2)}
            upload = client.uploads.upload(
                path, kind=args.kind, dataset=args.dataset, measurement=args.measurement,
                on_bytes=lambda done, total: progress.update(task, completed=done, total=total),
                resume=not args.no_resume, **chunking)
        except ApiError as exc:
            if exc.status == 404 and "dataset" in exc.message:
                exc.message += f" (create it first: stage1 datasets create {args.dataset})"
            raise
        progress.update(task, completed=upload.size)
    seconds = max(time.monotonic() - started, 1e-6)
    how = f"multipart, {upload.parts} parts" + (", resumed" if upload.resumed else "") if upload.multipart \
        else "single request"
    if upload.chunks:
        how = (f"{upload.chunks} chunks, {upload.sent_chunks} sent now"
               + (", resumed" if upload.resumed else ""))
    err.print(f"uploaded {path.name}: {upload.size:,} bytes in {seconds:.1f} s ({how}); "
              f"upload {upload.upload_id}, import job {upload.job_id}", highlight=False)
    if args.no_wait:
        if args.json:
            _print_json({"upload_id": upload.upload_id, "job_id": upload.job_id, "size": upload.size})
        else:
            out.print(upload.job_id)
        return EXIT_OK
    job = _follow(client, args, err, lambda on_update: client.uploads.wait(
        upload, on_update=on_update, timeout=args.wait, use_events=not args.no_events), title="import")
    return _finish(job, args, out, err)


def cmd_predictions(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    from pathlib import Path

    dest = Path(args.output)
    fmt = args.format or ("parquet" if dest.suffix.lower() in (".parquet", ".pq") else "csv")
    with _bytes_progress(err) as progress:
        task = progress.add_task(f"predictions → {dest.name}", total=None)
        client.runs.download_predictions(
            args.run_id, dest, format=fmt, fold=args.fold,
            on_bytes=lambda done, total: progress.update(task, completed=done, total=total),
            on_job=lambda job: progress.update(task, description=f"export job {job.job_id[:8]} {job.status}"))
        progress.update(task, total=progress.tasks[0].completed or 1)
    err.print(f"wrote {dest} ({dest.stat().st_size:,} bytes, {fmt})", highlight=False)
    return EXIT_OK


COMMANDS = {"datasets": cmd_datasets, "runs": cmd_runs, "simulations": cmd_simulations, "jobs": cmd_jobs,
            "upload": cmd_upload, "predictions": cmd_predictions}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.parser = parser  # `stage1 completion` walks it
    if getattr(args, "output_format", None) == "json":
        args.json = True
    out, err = _consoles()
    from stage1_client import cli_commands
    from stage1_client.config import ConfigError
    from stage1_client.errors import ApiError

    try:
        if args.command in cli_commands.LOCAL:
            return cli_commands.LOCAL[args.command](args, out, err)
        from stage1_client.api import Client

        with Client(args.url, args.token, profile=args.profile, timeout=args.timeout) as client:
            action = cli_commands.ACTIONS.get(args.command)
            done = action(client, args, err) if action else None
            if done is not None:
                return done
            command = COMMANDS.get(args.command) or cli_commands.COMMANDS[args.command]
            return command(client, args, out, err)
    except ApiError as exc:
        err.print(f"stage1: error: {exc.one_line()}", markup=False, highlight=False, soft_wrap=True)
        return exc.exit_code
    except (ConfigError, cli_commands.Usage) as exc:
        err.print(f"stage1: error: {exc}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_USAGE
    except Failed as exc:
        err.print(f"stage1: {exc}", markup=False, highlight=False, soft_wrap=True)
        return exc.code
    except OSError as exc:
        err.print(f"stage1: error: {exc}", markup=False, highlight=False, soft_wrap=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        err.print("stage1: interrupted", markup=False)
        return EXIT_INTERRUPTED


def run() -> None:
    """The console script's entry point."""
    try:
        sys.exit(main())
    except BrokenPipeError:  # `stage1 jobs list | head`
        os._exit(EXIT_OK)


if __name__ == "__main__":
    run()
