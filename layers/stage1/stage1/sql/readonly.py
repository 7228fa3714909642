"""The read-only guard for user SQL (POST /api/questdb/query and /export).

This is the first of several layers (docs/questdb.md): the statement must *parse* as exactly one
SELECT (or WITH … SELECT) before QuestDB sees it; QuestDB then runs it as its read-only PGWire
user (queries) or through `/exp`, which itself refuses anything but SELECT (exports).

The tokenizer follows QuestDB 9.3.4's own lexer where that is known (each form checked on the
server, see tests/hostile/sql.txt): `'…'` strings and `"…"` / `` `…` `` quoted identifiers with
doubled-quote escapes and no backslash escapes; whitespace is exactly space, tab, CR and LF (form
feed, vertical tab, NBSP, U+2028 … are *word* characters to QuestDB); a `--` comment ends at LF
**or CR**; `/* */` comments nest, an unterminated one runs to the end, and a `--` inside one starts
a line comment that swallows its `*/`. Wherever two reasonable lexers could disagree about where a
string, identifier or comment ends, the input is refused instead of guessed: comment markers inside
comments (nesting included), a comment body that starts or ends with `/`, a stray `*/`, anything but
printable ASCII and tab inside a comment, unterminated quotes or comments, a quote glued to a word
(`E'…'`, `ab'…'`), `$` (dollar quoting, parameters), `?`, `\\`, braces, control characters, and any
non-ASCII character outside quotes.

On top of the structure, token-level rules (tokens, never substrings, so a string or a quoted
identifier that merely contains the text passes):
- no statement verb (or SHOW/EXPLAIN, which QuestDB runs inside a subquery) as a bare word;
- a call `name(` only of an allowlisted function (`stage1.sql.functions.ALLOWED_FUNCTIONS`) or a
  keyword; never of a quoted name, a string, or a schema-qualified name (`x.f(`);
- no token at all (word, quoted identifier or string) that names a refused function or the catalog
  schemas: QuestDB runs `from query_activity`, `from "query_activity"` and `from 'query_activity'`;
- likewise no token that names an import's staging table (`stage1.core.questdb.is_staging`: it
  holds half an import until the commit), in any case, quoted or not, `"public.<name>"` included;
- at most one statement: a single trailing `;` is allowed and removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from stage1.core.errors import BadRequest
from stage1.core.questdb import is_staging
from stage1.sql.functions import ALLOWED_FUNCTIONS, KEYWORDS_BEFORE_PAREN, REFUSED_FUNCTIONS, is_refused_name

MAX_SQL_CHARS = 100_000
# Nesting deeper than this is refused before QuestDB's recursive parser sees it.
MAX_BRACKET_DEPTH = 64

TokenKind = Literal["word", "number", "string", "qident", "punct"]

# Words that start (or only occur in) statements that change something. Bare words only: a column
# literally named `update` must be quoted ("update").
STATEMENT_VERBS = frozenset({
    "insert", "update", "delete", "merge", "upsert", "create", "drop", "alter", "truncate", "rename",
    "copy", "backup", "snapshot", "checkpoint", "vacuum", "reindex", "refresh", "attach", "detach",
    "cancel", "grant", "revoke", "set", "reset", "begin", "commit", "rollback", "lock", "call",
    "execute", "prepare", "deallocate",
    # QuestDB runs `select * from (show parameters)`; EXPLAIN/DESCRIBE/DECLARE/INTO are no SELECT.
    "show", "explain", "describe", "declare", "into", "load", "import", "export", "unload",
})

_WHITESPACE = " \t\r\n"  # exactly QuestDB's: \f, \v, NBSP, U+2028 are word characters to it
_LINE_END = re.compile(r"[\r\n]")
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
            # QuestDB ends a line comment at LF *or* CR (`--\r files(...)` runs files()).
            end = _line_end(sql, i)
            _check_comment(sql[i + 2:end], i, block=False)
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end < 0:
                raise NotReadOnly("unterminated comment", i)
            _check_comment(sql[i + 2:end], i, block=True)
            i = end + 2
        elif sql.startswith("*/", i):
            raise NotReadOnly("a comment end without its start", i, "*/")
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


def _line_end(sql: str, i: int) -> int:
    found = _LINE_END.search(sql, i)
    return found.start() if found else len(sql)


def _check_comment(body: str, pos: int, *, block: bool) -> None:
    """Refuse a comment whose end QuestDB could place elsewhere: markers inside it (QuestDB nests
    `/* */` and lets `--` inside one swallow the `*/`), a body starting or ending with `/` (`/*/`),
    and any character but printable ASCII, tab (and CR/LF in a block comment)."""
    if "/*" in body or "*/" in body or "--" in body:
        raise NotReadOnly("comment markers inside a comment (nested comments are not allowed)", pos)
    if block and (body.startswith("/") or body.endswith("/")):
        raise NotReadOnly("a comment body may not start or end with '/'", pos)
    allowed_ws = "\t\r\n" if block else "\t"
    for offset, ch in enumerate(body):
        if not (" " <= ch <= "~" or ch in allowed_ws):
            raise NotReadOnly(f"character {ch!r} is not allowed in a comment (printable ASCII only)",
                              pos + 2 + offset, ch)


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
            if len(stack) > MAX_BRACKET_DEPTH:
                raise NotReadOnly(f"brackets nested deeper than {MAX_BRACKET_DEPTH}", tok.pos, tok.text)
        elif tok.text in ")]":
            if not stack or stack[-1].text != pairs[tok.text]:
                raise NotReadOnly("unbalanced brackets", tok.pos, tok.text)
            stack.pop()
    if stack:
        raise NotReadOnly("unbalanced brackets", stack[-1].pos, stack[-1].text)


def _check_words(tokens: list[Token]) -> None:
    for index, tok in enumerate(tokens):
        if tok.kind == "word" and tok.lower in STATEMENT_VERBS:
            raise NotReadOnly(f"{tok.text.upper()} is not allowed in a read-only query (quote a column of that "
                              f"name)", tok.pos, tok.text)
        if tok.kind in ("word", "qident", "string") and is_refused_name(name := _unquote(tok)):
            what = f"function {name}()" if name in REFUSED_FUNCTIONS else f"the catalog schema {name.split('.')[0]}"
            raise NotReadOnly(f"{what} is not allowed in a read-only query (refused wherever it is named, "
                              f"quoted or not)", tok.pos, tok.text)
        if tok.kind in ("word", "qident", "string", "number") and is_staging(name := _unquote(tok)):
            raise NotReadOnly(f"the table {name} is an import's staging table: not readable until the import "
                              f"commits (refused wherever it is named, quoted or not)", tok.pos, tok.text)
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if following is None or following.kind != "punct" or following.text != "(":
            continue
        if tok.kind in ("qident", "string"):
            raise NotReadOnly(f"a quoted function name is not allowed ({tok.text[:40]}(…))", tok.pos, tok.text)
        if tok.kind != "word":
            continue
        previous = tokens[index - 1] if index > 0 else None
        if previous is not None and previous.kind == "punct" and previous.text == ".":
            raise NotReadOnly(f"a schema-qualified function call is not allowed ({tok.text}(…))", tok.pos, tok.text)
        if tok.lower not in ALLOWED_FUNCTIONS and tok.lower not in KEYWORDS_BEFORE_PAREN:
            raise NotReadOnly(f"function {tok.lower}() is not allowed in a read-only query (not on the allowlist)",
                              tok.pos, tok.text)


def _unquote(tok: Token) -> str:
    if tok.kind in ("qident", "string"):
        return tok.text[1:-1].replace(tok.text[0] * 2, tok.text[0]).lower()
    return tok.lower


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
