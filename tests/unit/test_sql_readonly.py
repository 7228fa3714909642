"""The read-only guard on its own (no network). The same inputs run against the real QuestDB through
the gateway in tests/integration/test_questdb_sql.py, which also checks nothing was written."""

import sys
from pathlib import Path

import pytest

from stage1.sql.functions import ALLOWED_FUNCTIONS, KEYWORDS_BEFORE_PAREN, REFUSED_FUNCTIONS
from stage1.sql.readonly import NotReadOnly, check_readonly, tokenize

ALLOWED = [
    "select 1",
    "SELECT * FROM trades",
    "select * from trades;",
    "select * from trades ;  -- done",
    "  select x from t where s = 'drop table t; --'  ",
    "select \"update\" from t",  # a quoted column named like a verb
    "select `delete` from t",
    "select 'it''s' as x",
    "select 1 /* a comment */ as x",
    "with a as (select * from t), b as (select * from a) select * from b",
    "WITH a AS (SELECT 1 x) SELECT x FROM a",
    "select timestamp, avg(price) from trades sample by 1h fill(prev) align to calendar",
    "select * from trades latest on timestamp partition by symbol",
    "select * from tables()",
    "select * from table_partitions('t')",
    "select a::double, b from t where c in (1, 2) and d between 1.5 and 2e10 limit -5",
    "select count(*) from t where s = 'café'",
    "select * from t where g = #sp052w92",
    "select x from t\n-- trailing comment",
    "select array_sum(arr[1:3]) from t",
    "select 'a\\' as backslash_is_not_an_escape",
]


@pytest.mark.parametrize("sql", ALLOWED)
def test_allowed(sql):
    out = check_readonly(sql).sql
    assert out.strip() and not out.endswith(";") and sql.strip().startswith(out.strip())


HOSTILE = [
    ("drop table t", "DROP"),
    ("DROP TABLE t", "DROP"),
    ("dRoP table t", "DROP"),
    ("insert into t values (1)", "INSERT"),
    ("update t set x = 1", "UPDATE"),
    ("delete from t", "DELETE"),
    ("alter table t add column c int", "ALTER"),
    ("truncate table t", "TRUNCATE"),
    ("copy t to 'x' with format parquet", "COPY"),
    ("create table x as (select * from t)", "CREATE"),
    ("rename table t to u", "RENAME"),
    ("backup database", "BACKUP"),
    ("snapshot prepare", "SNAPSHOT"),
    ("checkpoint create", "CHECKPOINT"),
    ("vacuum table t", "VACUUM"),
    ("reindex table t lock exclusive", "REINDEX"),
    ("cancel query 1", "CANCEL"),
    ("set x = 1", "SET"),
    ("select 1; drop table t", "more than one statement"),
    ("select 1;drop table t;", "more than one statement"),
    ("select 1; select 2", "more than one statement"),
    ("select 1 ;; ", "more than one statement"),
    ("with a as (select 1) insert into t select * from a", "INSERT"),
    ("with a as (select 1) a", "must be followed by SELECT"),
    ("select * from t where x in (select 1); drop table t", "more than one statement"),
    ("/* select */ drop table t", "DROP"),
    ("-- select\ndrop table t", "DROP"),
    ("select 1 /* ; drop table t */", None),  # allowed: the comment is inert (checked below)
    ("select 1 /* /* nested */ ; drop table t */", "nested comments"),
    ("select 1 /* unterminated ; drop table t", "unterminated comment"),
    ("select 1 -- /* \n; drop table t */", "comment markers"),
    ("select 'unterminated; drop table t", "unterminated quoted"),
    ('select "unterminated; drop table t', "unterminated quoted"),
    ("select E'\\'; drop table t; --'", "quote directly after a word"),
    ("select ab'c; drop table t'", "quote directly after a word"),
    ("select $$ ; drop table t; $$", "'$'"),
    ("select $1", "'$'"),
    ("select ? from t", "'?'"),
    ("select 1 \\; drop table t", "'\\\\'"),
    ("select\x00 1", "control characters"),
    ("select 1\u037e drop table t", "not allowed outside quotes"),  # Greek question mark looks like ;
    ("select reload_config()", "reload_config"),
    ("select RELOAD_CONFIG ()", "reload_config"),
    ('select "reload_config"()', "reload_config"),
    ("select * from files('/')", "files"),
    ("select * from glob('/etc/*')", "glob"),
    ("select * from read_parquet('x.parquet')", "read_parquet"),
    ("select touch(select * from t)", "touch"),
    ("select flush_query_cache()", "flush_query_cache"),
    ("select dump_thread_stacks()", "dump_thread_stacks"),
    ("select simulate_crash('0')", "simulate_crash"),
    ("select * from query_activity()", "query_activity"),
    ("select pg_catalog.pg_sleep(10)", "pg_catalog"),
    ("select pg_sleep(10)", "pg_sleep"),
    ("explain select 1", "EXPLAIN"),
    ("trades", "must start with SELECT or WITH"),
    ("(select 1)", "must start with SELECT or WITH"),
    ("", "empty"),
    ("   -- only a comment", "empty"),
    (";", "empty"),
    ("select (1", "unbalanced"),
    ("select 1) union (select 2", "unbalanced"),
]


@pytest.mark.parametrize(("sql", "why"), HOSTILE)
def test_hostile(sql, why):
    if why is None:
        assert check_readonly(sql).sql == sql
        return
    with pytest.raises(NotReadOnly) as info:
        check_readonly(sql)
    err = info.value
    assert err.status_code == 400
    text = f"{err.reason} {err.details}".lower()
    assert why.lower() in text, text


def test_trailing_semicolon_is_removed_so_the_statement_can_be_wrapped():
    assert check_readonly("select 1 ;  ").sql == "select 1"
    assert check_readonly("select 1; -- end").sql == "select 1"


def test_tokens_keep_strings_and_identifiers_whole():
    kinds = [(t.kind, t.text) for t in tokenize("select \"a\"\"b\", 'x''y' from t -- c\n")]
    assert kinds == [("word", "select"), ("qident", '"a""b"'), ("punct", ","), ("string", "'x''y'"),
                     ("word", "from"), ("word", "t")]


def test_long_statements_are_refused():
    with pytest.raises(NotReadOnly):
        check_readonly("select 1" + " " * 100_001)


def test_function_lists_are_lowercase_and_disjoint():
    for names in (ALLOWED_FUNCTIONS, REFUSED_FUNCTIONS, KEYWORDS_BEFORE_PAREN):
        assert all(name == name.lower() and name.replace(".", "_").isidentifier() for name in names)
    assert not ALLOWED_FUNCTIONS & REFUSED_FUNCTIONS
    assert not KEYWORDS_BEFORE_PAREN & REFUSED_FUNCTIONS


sys.path.insert(0, str(Path(__file__).parents[1] / "hostile"))
from corpus import load  # noqa: E402  (tests/hostile is data plus its loader, not a package)

CORPUS = load("sql.txt")


@pytest.mark.parametrize("case", CORPUS, ids=[f"sql.txt:{c.line}" for c in CORPUS])
def test_hostile_corpus_against_the_guard_alone(case):
    """The corpus the gateway test drives (tests/integration/test_hostile_sql.py), without the network."""
    if case.outcome == "allow":
        check_readonly(case.text)
        return
    with pytest.raises(NotReadOnly) as info:
        check_readonly(case.text)
    if case.reason:
        assert case.reason.lower() in f"{info.value.reason} {info.value.details}".lower()


def test_every_refused_function_is_refused_in_every_spelling():
    for name in REFUSED_FUNCTIONS:
        for sql in (f"select * from {name}()", f"select * from {name}", f'select * from "{name}"',
                    f"select * from '{name}'", f"select * from `{name}`", f"select {name.upper()}(1)"):
            with pytest.raises(NotReadOnly):
                check_readonly(sql)


def test_allowlisted_functions_are_callable():
    for name in ALLOWED_FUNCTIONS:
        check_readonly(f"select {name}(1) from long_sequence(1)")


def test_line_comment_ends_at_cr_like_questdb():
    """Issue 11, hole 1: `--` ended only at LF here, QuestDB also ends it at CR."""
    assert [t.text for t in tokenize("select 1 --\r, 2")] == ["select", "1", ",", "2"]
    with pytest.raises(NotReadOnly, match="only a single"):
        check_readonly("select * --\r from files('/etc')")


def test_deep_and_huge_statements_are_refused_quickly():
    import time

    started = time.monotonic()
    for sql in ("select " + "(" * 65 + "1" + ")" * 65, "select " + "(" * 10_000 + "1" + ")" * 10_000,
                "select 1" + " " * 100_000, "select 1 " + "/**/" * 20_000 + " files('/')"):
        with pytest.raises(NotReadOnly):
            check_readonly(sql)
    check_readonly("select " + "(" * 64 + "1" + ")" * 64)
    check_readonly("select 1 " + "--\n" * 30_000)
    assert time.monotonic() - started < 2.0
