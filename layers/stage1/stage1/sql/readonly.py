"""The read-only guard for user SQL (POST /api/questdb/query and /export).

This is the first of several layers (docs/questdb.md): the statement must *parse* as exactly one
SELECT (or WITH … SELECT) before QuestDB sees it; QuestDB then runs it as its read-only PGWire
user (queries) or through `/exp`, which itself refuses anything but SELECT (exports).

The tokenizer follows QuestDB 9.3.4's own lexer where that is known (checked on the server):
`'…'` strings and `"…"` / `` `…` `` quoted identifiers with doubled-quote escapes and no backslash
escapes, `--` line comments, nested `/* */` block comments. Wherever two reasonable lexers could
disagree about where a string, identifier or comment ends, the input is refused instead of guessed:
comment markers inside comments, unterminated quotes or comments, a quote glued to a word (`E'…'`,
`ab'…'`), `$` (dollar quoting, parameters), `?`, `\\`, braces, control characters, and any non-ASCII
character outside quotes and comments.

On top of the structure, three token-level rules (tokens, never substrings, so a string or a
quoted identifier that merely contains the text passes):
- no statement verb as a bare word anywhere (INSERT, UPDATE, DROP, COPY, SNAPSHOT, …);
- no call of a function with side effects or server access (see `DENIED_FUNCTIONS`);
- at most one statement: a single trailing `;` is allowed and removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from stage1.core.errors import BadRequest

MAX_SQL_CHARS = 100_000

TokenKind = Literal["word", "number", "string", "qident", "punct"]

# Words that start (or only occur in) statements that change something. Bare words only: a column
# literally named `update` must be quoted ("update").
STATEMENT_VERBS = frozenset({
    "insert", "update", "delete", "merge", "upsert", "create", "drop", "alter", "truncate", "rename",
    "copy", "backup", "snapshot", "checkpoint", "vacuum", "reindex", "refresh", "attach", "detach",
    "cancel", "grant", "revoke", "set", "reset", "begin", "commit", "rollback", "lock", "call",
    "execute", "prepare", "deallocate",
})

# QuestDB 9.3.4 functions a read-only user may still call (its ReadOnlySecurityContext allows
# `authorizeSystemAdmin`, so they are *not* refused by the server) and that act on the server
# rather than read table data: they reload config, flush caches, dump stacks, list or read files
# on the server's disk, show other sessions' SQL, block, or crash (dev mode). Checked against
# `functions()` of the pinned server by tests/integration/test_questdb_sql.py.
DENIED_FUNCTIONS = frozenset({
    "reload_config", "flush_query_cache", "cancel_query", "dump_memory_usage", "dump_thread_stacks",
    "hydrate_table_metadata", "simulate_crash", "simulate_warnings", "wait_wal_table", "touch",
    "files", "glob", "import_files", "export_files", "read_parquet", "parquet_scan",
    "query_activity", "export_activity", "pg_advisory_unlock_all", "rnd_log",
    # Not in 9.3.4; refused in case a later version (or a Postgres habit) brings them.
    "sleep", "pg_sleep", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "lo_import",
    "lo_export", "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "copy_from", "copy_to",
})

_WHITESPACE = " \t\r\n"
_QUOTES = "'\"`"
# ASCII punctuation QuestDB SQL uses outside quotes; anything else outside quotes is refused.
_PUNCT = "()[],.;+-*/%<>=!~^&|:@#"


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str
    pos: int

    @property
    def lower(self) -> str:
        return self.text.lower()

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.lower in words


class NotReadOnly(BadRequest):
    """The statement is not a single read-only SELECT; `details` say why and where."""

    def __init__(self, reason: str, position: int | None = None, token: str | None = None) -> None:
        super().__init__(
            "only a single read-only SELECT (or WITH … SELECT) statement is allowed",
            {"reason": reason, "position": position, "token": token[:80] if token else None},
        )
        self.reason = reason


def _is_word_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "_")


def tokenize(sql: str) -> list[Token]:
    """Tokens without whitespace and comments. Raises `NotReadOnly` where QuestDB's reading of the
    text could differ from ours."""
    tokens: list[Token] = []
    n, i = len(sql), 0
    for pos, c in enumerate(sql):
        if (ord(c) < 0x20 and c not in "\t\r\n") or ord(c) == 0x7F:
            raise NotReadOnly("control characters are not allowed", pos)
    while i < n:
        c = sql[i]
        if c in _WHITESPACE:
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            if "/*" in sql[i:end] or "*/" in sql[i:end]:
                raise NotReadOnly("comment markers inside a comment", i)
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end < 0:
                raise NotReadOnly("unterminated comment", i)
            body = sql[i + 2:end]
            if "/*" in body or "--" in body:
                raise NotReadOnly("nested comments are not allowed", i)
            i = end + 2
        elif c in _QUOTES:
            if i > 0 and (_is_word_char(sql[i - 1]) or sql[i - 1] == "$"):
                raise NotReadOnly("a quote directly after a word (prefixed strings are not supported)", i)
            j = i + 1
            while True:
                k = sql.find(c, j)
                if k < 0:
                    raise NotReadOnly("unterminated quoted text", i)
                if k + 1 < n and sql[k + 1] == c:  # doubled quote: an escaped quote inside
                    j = k + 2
                    continue
                break
            tokens.append(Token("string" if c == "'" else "qident", sql[i:k + 1], i))
            i = k + 1
        elif _is_word_char(c):
            j = i + 1
            while j < n and _is_word_char(sql[j]):
                j += 1
            digit = c.isdigit()
            if digit:  # 1.5, 1e10, 1.25m, 0x1f: a number runs on through dots
                while j < n and (_is_word_char(sql[j]) or sql[j] == "."):
                    j += 1
            tokens.append(Token("number" if digit else "word", sql[i:j], i))
            i = j
        elif c in _PUNCT:
            tokens.append(Token("punct", c, i))
            i += 1
        else:
            raise NotReadOnly(f"character {c!r} is not allowed outside quotes", i, c)
    return tokens


@dataclass(frozen=True)
class ReadOnlySQL:
    """A statement that passed the guard. `sql` has no trailing `;` (so it can be wrapped)."""

    sql: str


def check_readonly(sql: str) -> ReadOnlySQL:
    """Return the statement if it is exactly one SELECT / WITH … SELECT; raise `NotReadOnly` (400)."""
    if not isinstance(sql, str) or not sql.strip():
        raise NotReadOnly("empty statement", 0)
    if len(sql) > MAX_SQL_CHARS:
        raise NotReadOnly(f"statement longer than {MAX_SQL_CHARS} characters", MAX_SQL_CHARS)
    tokens = tokenize(sql)
    if not tokens:
        raise NotReadOnly("empty statement (only comments)", 0)

    # One statement: a `;` only as the very last token.
    for index, tok in enumerate(tokens):
        if tok.kind == "punct" and tok.text == ";" and index != len(tokens) - 1:
            raise NotReadOnly("more than one statement", tok.pos, ";")
    end = len(sql)
    if tokens[-1].text == ";" and tokens[-1].kind == "punct":
        end = tokens[-1].pos
        tokens = tokens[:-1]
        if not tokens:
            raise NotReadOnly("empty statement", 0)

    _check_brackets(tokens)
    _check_words(tokens)
    _check_shape(tokens)
    return ReadOnlySQL(sql[:end].rstrip())


def _check_brackets(tokens: list[Token]) -> None:
    stack: list[Token] = []
    pairs = {")": "(", "]": "["}
    for tok in tokens:
        if tok.kind != "punct":
            continue
        if tok.text in "([":
            stack.append(tok)
        elif tok.text in ")]":
            if not stack or stack[-1].text != pairs[tok.text]:
                raise NotReadOnly("unbalanced brackets", tok.pos, tok.text)
            stack.pop()
    if stack:
        raise NotReadOnly("unbalanced brackets", stack[-1].pos, stack[-1].text)


def _unquote(tok: Token) -> str:
    if tok.kind == "qident":
        return tok.text[1:-1].replace(tok.text[0] * 2, tok.text[0]).lower()
    return tok.lower


def _check_words(tokens: list[Token]) -> None:
    for index, tok in enumerate(tokens):
        if tok.kind == "word" and tok.lower in STATEMENT_VERBS:
            raise NotReadOnly(f"{tok.text.upper()} is not allowed in a read-only query (quote a column of that "
                              f"name)", tok.pos, tok.text)
        if tok.kind in ("word", "qident"):
            following = tokens[index + 1] if index + 1 < len(tokens) else None
            if following is not None and following.kind == "punct" and following.text == "(":
                name = _unquote(tok)
                if name in DENIED_FUNCTIONS:
                    raise NotReadOnly(f"function {name}() is not allowed in a read-only query", tok.pos, tok.text)


def _check_shape(tokens: list[Token]) -> None:
    first = tokens[0]
    if first.is_word("select"):
        return
    if not first.is_word("with"):
        raise NotReadOnly("the statement must start with SELECT or WITH", first.pos, first.text)
    # WITH name AS ( … ) [, name AS ( … )]* SELECT …
    i = 1
    while True:
        if i >= len(tokens) or tokens[i].kind not in ("word", "qident"):
            raise NotReadOnly("a WITH clause needs a name", _pos(tokens, i))
        i += 1
        if i >= len(tokens) or not tokens[i].is_word("as"):
            raise NotReadOnly("AS expected in the WITH clause", _pos(tokens, i))
        i += 1
        if i >= len(tokens) or tokens[i].text != "(" or tokens[i].kind != "punct":
            raise NotReadOnly("( expected in the WITH clause", _pos(tokens, i))
        i = _skip_group(tokens, i)
        if i < len(tokens) and tokens[i].kind == "punct" and tokens[i].text == ",":
            i += 1
            continue
        break
    if i >= len(tokens) or not tokens[i].is_word("select"):
        raise NotReadOnly("a WITH clause must be followed by SELECT", _pos(tokens, i),
                          tokens[i].text if i < len(tokens) else None)


def _skip_group(tokens: list[Token], i: int) -> int:
    """Index after the bracket group opening at `i` (brackets are known to be balanced)."""
    depth = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.kind == "punct" and tok.text in "([":
            depth += 1
        elif tok.kind == "punct" and tok.text in ")]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def _pos(tokens: list[Token], i: int) -> int | None:
    return tokens[i].pos if i < len(tokens) else (tokens[-1].pos if tokens else None)
