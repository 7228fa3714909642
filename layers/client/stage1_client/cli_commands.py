"""The `stage1` commands beyond list/show/upload (docs/client.md): config profiles, health, SQL,
downloads, creates and deletes, job control, tokens, shell completion; and the options every
subcommand accepts after its name as well as before (`--output`, `--json`, `-q`, `--url`, ...).

Imported by `stage1_client.cli` when the parser is built; imports nothing heavy at module level.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stage1_client.errors import EXIT_OK, EXIT_SERVER, EXIT_USAGE

if TYPE_CHECKING:
    from rich.console import Console

    from stage1_client.api import Client

OUTPUTS = ("table", "json", "csv")
SCOPES = ("read", "write", "admin")


class Usage(Exception):  # noqa: N818 - an outcome: exit 2 with this line
    pass


# ---------------------------------------------------------------- options accepted anywhere
def add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The connection and output options. On the top-level parser they have defaults; on every
    subcommand they are repeated with SUPPRESS defaults, so `stage1 runs list --json` sets the same
    value as `stage1 --json runs list` and an absent option never overwrites one given before."""
    d: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    has = {s for action in parser._actions for s in action.option_strings}  # noqa: SLF001 - argparse has no API
    if "--url" not in has:
        parser.add_argument("--url", help=None if suppress else "API base URL (see Configuration)", **d)
    if "--token" not in has:
        parser.add_argument("--token", help=None if suppress else "API token", **d)
    if "--profile" not in has:
        parser.add_argument("--profile", help=None if suppress else "profile of ~/.config/stage1/config.toml "
                            "(default: $STAGE1_PROFILE, else 'default')", **d)
    if "--output" not in has:
        parser.add_argument("--output", dest="output_format", choices=OUTPUTS,
                            help=None if suppress else "table (default), json or csv", **d)
    if "--json" not in has:
        parser.add_argument("--json", action="store_true", help=None if suppress else "same as --output json", **d)
    if "-q" not in has:
        parser.add_argument("-q", "--quiet", action="store_true",
                            help=None if suppress else "print ids only (one a line), for scripts", **d)
    if "--timeout" not in has:
        parser.add_argument("--timeout", type=float, help=None if suppress else "seconds per HTTP request "
                            "(default 60)", **({"default": 60.0} if not suppress else d))
    if "--no-events" not in has:
        parser.add_argument("--no-events", action="store_true",
                            help=None if suppress else "follow jobs by polling only (no SSE)", **d)


def leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every (command path, parser) of the tree, the root first."""
    found = [(path, parser)]
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, child in action.choices.items():
                found.extend(leaves(child, (*path, name)))
    return found


# ---------------------------------------------------------------- parser
def add_parsers(sub: Any, areas: dict[str, Any]) -> None:
    """The new commands, and new actions on the existing areas (`areas`: name → its subparsers)."""
    x = sub.add_parser("login", help="store a named profile (URL + token) in ~/.config/stage1/config.toml")
    x.add_argument("--no-verify", action="store_true", help="store without checking the token against the API")
    sub.add_parser("logout", help="remove a profile (--profile, default 'default')")
    cfg = sub.add_parser("config", help="the stored profiles and what this shell resolves to").add_subparsers(
        dest="action", required=True)
    cfg.add_parser("list", help="profiles (tokens masked), and the URL and source in effect")
    sub.add_parser("health", help="liveness and readiness of Postgres, QuestDB and the object store (exit 5 if not)")

    x = sub.add_parser("query", help="read-only SQL → a table, CSV or JSON")
    x.add_argument("sql", nargs="?", help="the query (or --file, or - for stdin)")
    x.add_argument("-f", "--file", help="read the query from this file")
    x.add_argument("--limit", type=int, help="at most this many rows (server default 1000)")
    x = sub.add_parser("export", help="read-only SQL → a CSV or Parquet file (following the export job)")
    x.add_argument("sql", nargs="?")
    x.add_argument("-f", "--file", help="read the query from this file")
    x.add_argument("-o", dest="dest", required=True, metavar="FILE", help="file to write (.parquet → Parquet)")
    x.add_argument("--format", choices=("csv", "parquet"))
    x.add_argument("--mode", choices=("auto", "inline", "job"), default="auto")
    for kind in ("ohlcv", "indicators"):
        x = sub.add_parser(kind, help=f"download a dataset's {kind} (-o file.parquet|.csv)")
        x.add_argument("dataset")
        x.add_argument("-o", dest="dest", required=True, metavar="FILE")
        x.add_argument("--start", type=int, help="unix seconds, inclusive")
        x.add_argument("--end", type=int, help="unix seconds, inclusive")
    x = sub.add_parser("trades", help="download a simulation's trades (-o file.parquet|.csv)")
    x.add_argument("simulation_id")
    x.add_argument("-o", dest="dest", required=True, metavar="FILE")
    x.add_argument("--side", choices=("long", "short"))

    ds = areas["datasets"]
    x = ds.add_parser("update", help="change a dataset's symbol, granularity, source or metadata")
    x.add_argument("slug")
    x.add_argument("--symbol")
    x.add_argument("--granularity")
    x.add_argument("--source")
    x.add_argument("--metadata", help="a JSON object")
    x = ds.add_parser("delete", help="delete a dataset (--cascade: its runs and simulations too)")
    x.add_argument("ref")
    x.add_argument("--cascade", action="store_true")
    x.add_argument("--drop-questdb", action="store_true", help="drop its QuestDB tables too")

    runs = areas["runs"]
    x = runs.add_parser("create", help="store a run from a JSON file (RunIn), predictions inline or from a file")
    x.add_argument("json_file", help="the run as JSON (docs/resources.md); - for stdin")
    x.add_argument("--predictions", help="a predictions file (CSV, CSV.gz, Parquet, Arrow): uploaded, then imported")
    x.add_argument("--no-wait", action="store_true")
    runs.add_parser("delete", help="delete a run and its predictions table").add_argument("run_id")

    sims = areas["simulations"]
    x = sims.add_parser("create", help="store a simulation from a JSON file, trades inline or from a file")
    x.add_argument("json_file")
    x.add_argument("--trades", help="a trades file (CSV, CSV.gz, Parquet, Arrow): uploaded, then imported")
    sims.add_parser("delete", help="delete a simulation").add_argument("simulation_id")

    jobs = areas["jobs"]
    jobs.add_parser("cancel", help="cancel a PENDING or RUNNING job").add_argument("job_id")
    jobs.add_parser("retry", help="run a FAILED or CANCELLED job again").add_argument("job_id")

    tok = sub.add_parser("tokens", help="API tokens (admin scope)").add_subparsers(dest="action", required=True)
    x = tok.add_parser("create", help="issue a token (printed once)")
    x.add_argument("name")
    x.add_argument("--scope", action="append", choices=SCOPES, dest="scopes", help="repeat; default read")
    x.add_argument("--expires-in", type=int, metavar="SECONDS")
    x = tok.add_parser("list", help="tokens (never the secret)")
    x.add_argument("--limit", type=int, default=100)
    x.add_argument("--offset", type=int, default=0)
    tok.add_parser("revoke", help="revoke a token").add_argument("token_id")

    x = sub.add_parser("completion", help="print a bash or zsh completion script")
    x.add_argument("shell", choices=("bash", "zsh"))


# ---------------------------------------------------------------- output helpers
def fmt(args: argparse.Namespace) -> str:
    return "json" if getattr(args, "json", False) else (getattr(args, "output_format", None) or "table")


def plain(value: Any) -> str:
    """A cell without rich markup (`[green]COMPLETED[/]` → `COMPLETED`)."""
    import re

    text = "" if value is None else str(value)
    return re.sub(r"\[/?[a-z ]*\]", "", text)


def emit_rows(args: argparse.Namespace, columns: list[str], rows: list[list[Any]]) -> bool:
    """`-q` (first column only) or `--output csv`; False: the caller draws its table or JSON."""
    if getattr(args, "quiet", False):
        for row in rows:
            sys.stdout.write(plain(row[0]) + "\n")
        return True
    if fmt(args) == "csv":
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[plain(v) for v in row] for row in rows])
        return True
    return False


def _emit_one(args: argparse.Namespace, obj: Any, ident: Any, err: Console, line: str) -> int:
    from stage1_client.cli_output import _print_json

    if getattr(args, "quiet", False):
        sys.stdout.write(f"{ident}\n")
    elif fmt(args) == "json":
        _print_json(obj)
    else:
        err.print(line, highlight=False, markup=False)
    return EXIT_OK


def _sql_text(args: argparse.Namespace) -> str:
    if args.file:
        return Path(args.file).read_text()
    if args.sql in (None, "-"):
        if sys.stdin.isatty() and args.sql is None:
            raise Usage("give the SQL as an argument, with --file, or on stdin (-)")
        return sys.stdin.read()
    return args.sql


def _load_json(name: str) -> dict[str, Any]:
    import json

    text = sys.stdin.read() if name == "-" else Path(name).read_text()
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise Usage(f"{name}: not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise Usage(f"{name}: must be a JSON object")
    return doc


# ---------------------------------------------------------------- commands without a client
def cmd_login(args: argparse.Namespace, out: Console, err: Console) -> int:
    from stage1_client.config import DEFAULT_PROFILE, check_name, save_profile

    name = check_name(getattr(args, "profile", None) or DEFAULT_PROFILE)
    url = getattr(args, "url", None)
    if not url:
        raise Usage("login needs --url URL")
    token = getattr(args, "token", None)
    if not token:
        if sys.stdin.isatty():
            import getpass

            token = getpass.getpass(f"token for {url}: ")
        else:
            token = sys.stdin.readline()
        token = token.strip()
    if not token:
        raise Usage("login needs a token (--token, the prompt, or one line on stdin)")
    if not args.no_verify:
        from stage1_client.api import Client

        with Client(url, token, timeout=args.timeout) as client:
            client.datasets.list(limit=1)  # a read: 401/403 here means the token is wrong
    path = save_profile(name, url, token)
    err.print(f"profile {name}: {url.rstrip('/')} saved in {path} (mode 600)", highlight=False, markup=False)
    return EXIT_OK


def cmd_logout(args: argparse.Namespace, out: Console, err: Console) -> int:
    from stage1_client.config import DEFAULT_PROFILE, remove_profile

    name = getattr(args, "profile", None) or DEFAULT_PROFILE
    if not remove_profile(name):
        raise Usage(f"no profile {name!r}")
    err.print(f"profile {name} removed", highlight=False, markup=False)
    return EXIT_OK


def cmd_config(args: argparse.Namespace, out: Console, err: Console) -> int:
    from stage1_client.cli_output import _print_json, _table
    from stage1_client.config import config_path, load_profiles, resolve

    resolved = resolve(url=getattr(args, "url", None), token=getattr(args, "token", None),
                       profile=getattr(args, "profile", None))
    profiles = load_profiles()
    rows = [[name, body.get("url", ""), _mask(body.get("token", "")),
             "yes" if resolved.source == f"profile {name}" else ""] for name, body in sorted(profiles.items())]
    if fmt(args) == "json":
        _print_json({"path": str(config_path()), "in_effect": {"url": resolved.url, "source": resolved.source},
                     "profiles": [{"name": r[0], "url": r[1], "token": r[2]} for r in rows]})
        return EXIT_OK
    if emit_rows(args, ["profile", "url", "token", "in effect"], rows):
        return EXIT_OK
    out.print(_table(f"Profiles ({config_path()})", ["profile", "url", "token", "in effect"], rows,
                     caption=f"in effect: {resolved.url} from {resolved.source}"))
    return EXIT_OK


def _mask(token: str) -> str:
    return (token[:6] + "…") if len(token) > 8 else ("…" if token else "")


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """A completion script from the parser tree: each command path's words (subcommands, options)."""
    table: dict[str, list[str]] = {}
    for path, node in leaves(parser):
        words: list[str] = []
        for action in node._actions:  # noqa: SLF001
            if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
                words.extend(action.choices)
            words.extend(s for s in action.option_strings if s.startswith("--"))
        table[" ".join(path)] = sorted(set(words))
    commands = sorted({p for p in table if p})
    if shell == "bash":
        cases = "\n".join(f'        "{k}") words="{" ".join(v)}" ;;' for k, v in table.items() if k)
        return f'''# stage1 bash completion (generated by `stage1 completion bash`); add to ~/.bashrc:
#   eval "$(stage1 completion bash)"
_stage1() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" path="" w i words
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${{COMP_WORDS[i]}}"
        case "$w" in -*) continue ;; esac
        case " {" ".join(c + "|" for c in commands)} " in
            *" ${{path:+$path }}$w|"*) path="${{path:+$path }}$w" ;;
        esac
    done
    case "$path" in
{cases}
        *) words="{" ".join(table[""])}" ;;
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F _stage1 stage1
'''
    cases = "\n".join(f'    "{k}") cands=({" ".join(v)}) ;;' for k, v in table.items() if k)
    known = " ".join(f'"{c}"' for c in commands)
    return f'''#compdef stage1
# stage1 zsh completion (generated by `stage1 completion zsh`); add to ~/.zshrc:
#   eval "$(stage1 completion zsh)"   (after compinit)
_stage1() {{
  local -a cands known   # not `words`: zsh's completion system owns that array (the command line)
  local cmdpath="" w  # not `path`: zsh ties that to $PATH
  known=({known})
  for w in ${{words[2,CURRENT-1]}}; do
    [[ $w == -* ]] && continue
    (( ${{known[(Ie)${{cmdpath:+$cmdpath }}$w]}} )) && cmdpath="${{cmdpath:+$cmdpath }}$w"
  done
  case "$cmdpath" in
{cases}
    *) cands=({" ".join(table[""])}) ;;
  esac
  compadd -- $cands
}}
compdef _stage1 stage1
'''


def cmd_completion(args: argparse.Namespace, out: Console, err: Console) -> int:
    sys.stdout.write(completion_script(args.parser, args.shell))
    return EXIT_OK


LOCAL = {"login": cmd_login, "logout": cmd_logout, "config": cmd_config, "completion": cmd_completion}


# ---------------------------------------------------------------- commands with a client
def cmd_health(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    from stage1_client.cli_output import _kv, _print_json
    from stage1_client.errors import ApiError

    live = client.health()
    try:
        ready = client.ready()
        ok = ready.status == "ok"
        parts: dict[str, Any] = {"postgres": ready.postgres, "questdb": ready.questdb,
                                 "object_store": ready.object_store, "status": ready.status}
    except ApiError as exc:
        ok, parts = False, {"status": "degraded", "error": exc.one_line()}
    if fmt(args) == "json":
        _print_json({"url": client.url, "version": live.version, **parts})
    elif not getattr(args, "quiet", False):
        out.print(_kv(f"Stage1 at {client.url}", [("version", live.version), *parts.items()]))
    return EXIT_OK if ok else EXIT_SERVER


def cmd_query(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    from stage1_client.cli_output import _print_json, _table

    result = client.query(_sql_text(args), limit=args.limit)
    if fmt(args) == "json":
        _print_json(result)
        return EXIT_OK
    columns = [c.name for c in result.columns]
    rows = [["" if v is None else v for v in row] for row in result.rows]
    if emit_rows(args, columns, rows):
        return EXIT_OK
    from rich.text import Text

    table = _table("Query", columns, [])
    for row in rows:
        table.add_row(*[Text(str(v)) for v in row])  # data, never markup
    out.print(table)
    err.print(f"{result.count:,} rows" + (f" (truncated at {result.limit:,}; stage1 export writes them all)"
                                          if result.truncated else ""), highlight=False, markup=False)
    return EXIT_OK


def _download_bar(err: Console, title: str) -> Any:
    from stage1_client.cli_output import _bytes_progress

    bar = _bytes_progress(err)
    task = bar.add_task(title, total=None)
    return bar, (lambda done, total: bar.update(task, completed=done, total=total)), (
        lambda job: bar.update(task, description=f"{title}: export job {job.job_id[:8]} {job.status}"))


def cmd_export(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    bar, on_bytes, on_job = _download_bar(err, f"export → {Path(args.dest).name}")
    with bar:
        path = client.export(_sql_text(args), args.dest, format=args.format, mode=args.mode, on_bytes=on_bytes,
                             on_job=on_job)
    err.print(f"wrote {path} ({path.stat().st_size:,} bytes)", highlight=False, markup=False)
    return EXIT_OK


def cmd_series(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    """`stage1 ohlcv|indicators DATASET -o FILE`: Parquet or CSV written by QuestDB (export)."""
    from stage1_client.framed import time_sql

    dataset = client.datasets.get(args.dataset)
    table = dataset.ohlcv_measurement if args.command == "ohlcv" else dataset.indicator_measurement
    bar, on_bytes, on_job = _download_bar(err, f"{args.command} → {Path(args.dest).name}")
    with bar:
        path = client.export(time_sql(table, start=args.start, end=args.end), args.dest, on_bytes=on_bytes,
                             on_job=on_job)
    err.print(f"wrote {path} ({path.stat().st_size:,} bytes)", highlight=False, markup=False)
    return EXIT_OK


def cmd_trades(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    """Trades live in Postgres: the server's CSV stream; `.parquet` is converted here in batches."""
    from stage1_client.core import query, segment

    dest = Path(args.dest)
    path = f"/api/simulations/{segment(args.simulation_id)}/trades"
    params = query(format="csv", side=args.side)
    if dest.suffix.lower() not in (".parquet", ".pq"):
        client.download("GET", path, dest, params=params)
    else:
        from stage1_client.convert import csv_to_parquet

        tmp = dest.with_name(dest.name + ".csv.part")
        try:
            client.download("GET", path, tmp, params=params)
            csv_to_parquet(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
    err.print(f"wrote {dest} ({dest.stat().st_size:,} bytes)", highlight=False, markup=False)
    return EXIT_OK


def cmd_tokens(client: Client, args: argparse.Namespace, out: Console, err: Console) -> int:
    from stage1_client.cli_output import _print_json, _table, _ts

    if args.action == "create":
        issued = client.tokens.create(args.name, args.scopes or ["read"], expires_in=args.expires_in)
        if fmt(args) == "json":
            _print_json(issued)
        else:  # the secret on stdout (for a pipe), the rest on stderr
            sys.stdout.write(issued.token + "\n")
            err.print(f"token {issued.token_id} ({issued.name}, {','.join(issued.scopes)}): shown once",
                      highlight=False, markup=False)
        return EXIT_OK
    if args.action == "revoke":
        info = client.tokens.revoke(args.token_id)
        return _emit_one(args, info, info.token_id, err, f"token {info.token_id} {info.status}")
    page = client.tokens.list(limit=args.limit, offset=args.offset)
    rows = [[t.token_id, t.name, t.token_prefix, ",".join(t.scopes), t.status, _ts(t.created_at),
             _ts(t.expires_at), _ts(t.last_used_at)] for t in page.items]
    columns = ["token_id", "name", "prefix", "scopes", "status", "created", "expires", "last used"]
    if fmt(args) == "json":
        _print_json(page)
    elif not emit_rows(args, columns, rows):
        out.print(_table("Tokens", columns, rows))
    return EXIT_OK


def dataset_action(client: Client, args: argparse.Namespace, err: Console) -> int | None:
    """`datasets update` and `datasets delete`; None for the other actions."""
    import json

    if args.action == "update":
        current = client.datasets.get(args.slug)
        body: dict[str, Any] = {"dataset_slug": current.dataset_slug, "symbol": args.symbol or current.symbol,
                                "granularity": args.granularity or current.granularity,
                                "source": args.source or current.source}
        if args.metadata is not None:
            try:
                body["metadata"] = json.loads(args.metadata)
            except ValueError as exc:
                raise Usage(f"--metadata: not JSON: {exc}") from exc
        d = client.datasets.upsert({k: v for k, v in body.items() if v is not None})
        return _emit_one(args, d, d.dataset_id, err, f"dataset {d.dataset_slug} ({d.dataset_id}) updated")
    if args.action == "delete":
        gone = client.datasets.delete(args.ref, cascade=args.cascade, drop_questdb=args.drop_questdb)
        return _emit_one(args, gone, args.ref, err, f"dataset {args.ref} deleted")
    return None


def run_action(client: Client, args: argparse.Namespace, err: Console) -> int | None:
    if args.action == "delete":
        gone = client.runs.delete(args.run_id)
        return _emit_one(args, gone, args.run_id, err, f"run {args.run_id} deleted")
    if args.action != "create":
        return None
    body = _load_json(args.json_file)
    if args.predictions:
        up = client.uploads.upload(args.predictions, kind="predictions",
                                   measurement=body.get("prediction_measurement") or _scratch_name("preds"))
        body["upload_id"] = up.upload_id  # the run's table is the upload's measurement
    created = client.runs.create(body)
    if created.job_id and not args.no_wait:
        client.runs.wait(created)
    return _emit_one(args, created, created.run_id, err, f"run {created.run_id} {created.status}"
                     + (f" (import job {created.job_id})" if created.job_id else ""))


def simulation_action(client: Client, args: argparse.Namespace, err: Console) -> int | None:
    if args.action == "delete":
        gone = client.simulations.delete(args.simulation_id)
        return _emit_one(args, gone, args.simulation_id, err, f"simulation {args.simulation_id} deleted")
    if args.action != "create":
        return None
    sim = client.simulations.create(_load_json(args.json_file), trades_path=args.trades)
    return _emit_one(args, sim, sim.simulation_id, err,
                     f"simulation {sim.simulation_id} {sim.status}: {sim.trade_count:,} trades")


def job_action(client: Client, args: argparse.Namespace, err: Console) -> int | None:
    if args.action not in ("cancel", "retry"):
        return None
    job = client.jobs.cancel(args.job_id) if args.action == "cancel" else client.jobs.retry(args.job_id)
    return _emit_one(args, job, job.job_id, err, f"job {job.job_id} {job.status}")


def _scratch_name(prefix: str) -> str:
    import uuid

    return f"{prefix}_{uuid.uuid4().hex[:16]}"


COMMANDS = {"health": cmd_health, "query": cmd_query, "export": cmd_export, "ohlcv": cmd_series,
            "indicators": cmd_series, "trades": cmd_trades, "tokens": cmd_tokens}
ACTIONS = {"datasets": dataset_action, "runs": run_action, "simulations": simulation_action, "jobs": job_action}
__all__ = ["ACTIONS", "COMMANDS", "EXIT_USAGE", "LOCAL", "Usage", "add_global_options", "add_parsers", "leaves"]
