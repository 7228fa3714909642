"""The `filter=` expressions of the run and simulation lists: a hand-written tokenizer and a
recursive-descent parser that turn user text into a SQL condition with bind parameters only.

    summary_metrics.sharpe > 1.2 and hyperparameters.max_depth = 6 and status = 'COMPLETED'

Grammar (keywords are case-insensitive; docs/resources.md, "Search and rank"):

    expr      := and_expr ( "or" and_expr )*
    and_expr  := unary ( "and" unary )*
    unary     := "not" unary | "(" expr ")" | predicate
    predicate := field ( op literal
                       | ["not"] "in" "(" literal ( "," literal )* ")"
                       | ["not"] ( "like" | "ilike" ) string
                       | "is" ["not"] "null" )
    op        := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    literal   := 'string' ('' escapes a quote) | number (JSON's grammar) | true | false
    field     := column | document "." key | "folds.metrics." key "." ( "mean" | "min" | "max" )

No user text ever becomes SQL text: the conditions are this module's constants, and values *and
JSON keys* travel as bind parameters (`summary_metrics ->> %(flt_3)s::text`). JSON numbers are cast
only after `jsonb_typeof(...) = 'number'` (inside a CASE, which Postgres evaluates in order), so a
string where a number was expected is "no match", never a cast error. Everything is bounded before
work starts: the text's length, the number of predicates, the `in` list and the nesting depth.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from stage1.core.errors import BadRequest
from stage1.core.refs import as_uuid

MAX_FILTER_CHARS = 2000
MAX_TERMS = 50
MAX_IN_LIST = 100
MAX_DEPTH = 8
MAX_NUMBER_CHARS = 40
MAX_EXPONENT = 300

Kind = Literal["text", "number", "time", "uuid"]
AGGREGATES = {"mean": "avg", "min": "min", "max": "max"}
KEY_RE = re.compile(r"^[A-Za-z0-9_]{1,128}$")
_NUMBER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_OPS = ("<=", ">=", "!=", "<>", "=", "<", ">")
_KEYWORDS = frozenset({"and", "or", "not", "in", "like", "ilike", "is", "null", "true", "false"})


@dataclass(frozen=True)
class Column:
    sql: str
    kind: Kind
    nullable: bool = False


@dataclass(frozen=True)
class Fields:
    """What one list can filter and sort on: its columns (name -> constant SQL), its JSONB documents
    (prefix -> column SQL) and, for runs, the fold-metric aggregate subquery ({agg}, {key})."""

    columns: dict[str, Column]
    documents: dict[str, str]
    folds: str | None = None
    id_column: str = ""


def bad_filter(message: str, position: int, token: str, parameter: str = "filter") -> BadRequest:
    return BadRequest(f"bad {parameter}: {message} at position {position}",
                      {"parameter": parameter, "position": position, "token": token[:80]})


# ------------------------------------------------------------------------------------ tokenizer
@dataclass(frozen=True)
class Token:
    type: Literal["ident", "keyword", "string", "number", "op", "(", ")", ",", "end"]
    text: str
    pos: int
    value: Any = None


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
        elif ch in "(),":
            tokens.append(Token(ch, ch, i))  # type: ignore[arg-type]
            i += 1
        elif ch == "'":
            value, end = _string(text, i)
            tokens.append(Token("string", text[i:end], i, value))
            i = end
        elif ch == "-" or ch.isdigit():
            m = _NUMBER_RE.match(text, i)
            if m is None or (m.end() < n and (text[m.end()].isalnum() or text[m.end()] in "._")):
                end = m.end() + 1 if m else i + 1
                raise bad_filter("not a number", i, text[i:end])
            if m.end() - i > MAX_NUMBER_CHARS:
                raise bad_filter(f"number longer than {MAX_NUMBER_CHARS} characters", i, m.group())
            number = Decimal(m.group())
            if number and not -MAX_EXPONENT <= number.adjusted() <= MAX_EXPONENT:  # Postgres numeric would overflow
                raise bad_filter(f"number outside 1e-{MAX_EXPONENT}..1e{MAX_EXPONENT}", i, m.group())
            tokens.append(Token("number", m.group(), i, number))
            i = m.end()
        elif (m := _IDENT_RE.match(text, i)) is not None:  # ASCII only: any other letter is refused below
            word = m.group()
            kind = "keyword" if word.lower() in _KEYWORDS else "ident"
            tokens.append(Token(kind, word.lower() if kind == "keyword" else word, i))  # type: ignore[arg-type]
            i = m.end()
        else:
            op = next((o for o in _OPS if text.startswith(o, i)), None)
            if op is None:
                raise bad_filter("unexpected character", i, ch)
            tokens.append(Token("op", op, i))
            i += len(op)
    tokens.append(Token("end", "", n))
    return tokens


def _string(text: str, start: int) -> tuple[str, int]:
    out, i = [], start + 1
    while i < len(text):
        if text[i] == "'":
            if text.startswith("''", i):
                out.append("'")
                i += 2
                continue
            return "".join(out), i + 1
        if text[i] == "\x00":  # Postgres text cannot hold NUL: refused here, not a 500 there
            raise bad_filter("NUL in a string", i, "\\x00")
        out.append(text[i])
        i += 1
    raise bad_filter("unterminated string", start, text[start:start + 20])


# -------------------------------------------------------------------------------------- fields
@dataclass(frozen=True)
class Target:
    """A field resolved to SQL: a column, a JSON key of a document, or a fold aggregate."""

    name: str
    column: Column | None = None
    document: str | None = None
    key: str | None = None
    aggregate: str | None = None


def resolve(fields: Fields, name: str, pos: int, parameter: str = "filter") -> Target:
    if name in fields.columns:
        return Target(name, column=fields.columns[name])
    prefix, _, rest = name.partition(".")
    if prefix in fields.documents and rest and "." not in rest:
        _check_key(rest, pos, name, parameter)
        return Target(name, document=fields.documents[prefix], key=rest)
    if fields.folds and prefix == "folds" and rest.startswith("metrics."):
        key, _, agg = rest[len("metrics."):].rpartition(".")
        if agg not in AGGREGATES or not key or "." in key:
            raise bad_filter("a fold metric is folds.metrics.<key>.mean|min|max", pos, name, parameter)
        _check_key(key, pos, name, parameter)
        return Target(name, key=key, aggregate=AGGREGATES[agg])
    known = sorted(fields.columns) + [f"{d}.<key>" for d in fields.documents]
    if fields.folds:
        known.append("folds.metrics.<key>.mean|min|max")
    raise BadRequest(f"bad {parameter}: unknown field {name!r} at position {pos}",
                     {"parameter": parameter, "position": pos, "token": name[:80], "fields": known})


def _check_key(key: str, pos: int, name: str, parameter: str) -> None:
    if not KEY_RE.match(key):
        raise bad_filter("a JSON key is 1-128 of [A-Za-z0-9_]", pos, name, parameter)


class Binds:
    """Bind parameters named `<prefix>_<n>`: the only way a value or a key reaches the SQL text."""

    def __init__(self, prefix: str = "flt") -> None:
        self.prefix = prefix
        self.params: dict[str, Any] = {}

    def __call__(self, value: Any, cast: str = "") -> str:
        name = f"{self.prefix}_{len(self.params)}"
        self.params[name] = value
        return f"%({name})s{cast}"


def numeric_of(document: str, key_bind: str) -> str:
    """The JSON value as numeric, NULL when it is not a JSON number (the cast is guarded)."""
    return (f"(case when jsonb_typeof({document} -> {key_bind}) = 'number' "
            f"then ({document} ->> {key_bind})::numeric end)")


def text_of(document: str, key_bind: str) -> str:
    return f"(case when jsonb_typeof({document} -> {key_bind}) = 'string' then {document} ->> {key_bind} end)"


def aggregate_of(fields: Fields, aggregate: str, key_bind: str) -> str:
    assert fields.folds is not None and aggregate in AGGREGATES.values()
    return fields.folds.format(agg=aggregate, value=numeric_of("f.metrics", key_bind))


# -------------------------------------------------------------------------------------- parser
@dataclass
class _Parser:
    fields: Fields
    tokens: list[Token]
    binds: Binds
    at: int = 0
    terms: int = 0
    depth: int = 0
    _keys: dict[str, str] = field(default_factory=dict)

    @property
    def tok(self) -> Token:
        return self.tokens[self.at]

    def take(self) -> Token:
        tok = self.tokens[self.at]
        self.at += 1
        return tok

    def expect(self, type_: str, text: str | None = None, what: str = "") -> Token:
        tok = self.tok
        if tok.type != type_ or (text is not None and tok.text != text):
            raise self.error(f"expected {what or text or type_}", tok)
        return self.take()

    def error(self, message: str, tok: Token) -> BadRequest:
        if tok.type == "end":
            return bad_filter(f"{message}, found the end", tok.pos, "")
        return bad_filter(f"{message}, found {tok.text!r}", tok.pos, tok.text)

    def is_kw(self, word: str) -> bool:
        return self.tok.type == "keyword" and self.tok.text == word

    def expr(self) -> str:
        parts = [self.and_expr()]
        while self.is_kw("or"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"

    def and_expr(self) -> str:
        parts = [self.unary()]
        while self.is_kw("and"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else "(" + " and ".join(parts) + ")"

    def unary(self) -> str:
        if self.is_kw("not") or self.tok.type == "(":
            opening = self.take()
            self.depth += 1  # both recurse: `not` and `(` count towards the bound
            if self.depth > MAX_DEPTH:
                raise bad_filter(f"nesting deeper than {MAX_DEPTH}", opening.pos, opening.text)
            if opening.type == "keyword":
                inner = f"not coalesce({self.unary()}, false)"  # NOT of "unknown" (a missing value) matches
            else:
                inner = self.expr()
                self.expect(")", what="')'")
            self.depth -= 1
            return inner
        return self.predicate()

    def predicate(self) -> str:
        tok = self.tok
        if tok.type != "ident":
            raise self.error("expected a field name", tok)
        self.take()
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise bad_filter(f"more than {MAX_TERMS} conditions", tok.pos, tok.text)
        target = resolve(self.fields, tok.text, tok.pos)
        negate = False
        if self.is_kw("is"):
            self.take()
            if self.is_kw("not"):
                self.take()
                negate = True
            self.expect("keyword", "null", "null")
            return self.is_null(target, negate)
        if self.is_kw("not"):
            self.take()
            negate = True
            if not (self.is_kw("in") or self.is_kw("like") or self.is_kw("ilike")):
                raise self.error("expected in, like or ilike after not", self.tok)
        if self.is_kw("in"):
            self.take()
            return self.in_list(target, negate)
        if self.is_kw("like") or self.is_kw("ilike"):
            op = self.take().text
            pattern = self.tok
            if pattern.type != "string":
                raise self.error(f"{op} takes a 'string'", pattern)
            self.take()
            return self.like(target, op, pattern, negate)
        op_tok = self.tok
        if op_tok.type != "op":
            raise self.error("expected an operator (= != < <= > >= in like is)", op_tok)
        self.take()
        op = "<>" if op_tok.text == "!=" else op_tok.text
        return self.compare(target, op, self.literal())

    def literal(self) -> Token:
        tok = self.tok
        if tok.type in ("string", "number") or (tok.type == "keyword" and tok.text in ("true", "false")):
            return self.take()
        raise self.error("expected a value ('text', a number, true or false)", tok)

    # ---------------------------------------------------------------------------- SQL per target
    def key(self, target: Target) -> str:
        assert target.key is not None
        if target.key not in self._keys:  # one bind per distinct key
            self._keys[target.key] = self.binds(target.key, "::text")
        return self._keys[target.key]

    def is_null(self, target: Target, negate: bool) -> str:
        if target.column is not None:
            return f"{target.column.sql} is {'not ' if negate else ''}null"
        if target.aggregate is not None:
            return f"{aggregate_of(self.fields, target.aggregate, self.key(target))} is {'not ' if negate else ''}null"
        assert target.document is not None
        # A missing key and a JSON null are both "null".
        kind = f"coalesce(jsonb_typeof({target.document} -> {self.key(target)}), 'null')"
        return f"{kind} {'<>' if negate else '='} 'null'"

    def compare(self, target: Target, op: str, lit: Token) -> str:
        if target.column is not None:
            return f"{target.column.sql} {op} {self.column_value(target, lit, op)}"
        if target.aggregate is not None:
            value = self.number(target, lit)
            return f"{aggregate_of(self.fields, target.aggregate, self.key(target))} {op} {value}"
        assert target.document is not None
        doc, key = target.document, self.key(target)
        if op == "=":  # containment: exact type and value, and the GIN (jsonb_path_ops) index applies
            return f"{doc} @> {self.contains(target, lit)}"
        if lit.type == "number":
            return f"{numeric_of(doc, key)} {op} {self.binds(lit.value, '::numeric')}"
        if lit.type == "string":
            return f"{text_of(doc, key)} {op} {self.binds(lit.value, '::text')}"
        if op != "<>":
            raise bad_filter("true and false compare only with = and !=", lit.pos, lit.text)
        return (f"(case when jsonb_typeof({doc} -> {key}) = 'boolean' then ({doc} ->> {key})::boolean end) "
                f"<> {self.binds(lit.text == 'true', '::boolean')}")

    def contains(self, target: Target, lit: Token) -> str:
        # The JSON text is built by json.dumps (key) and the number token, which matched JSON's own
        # number grammar; it travels as one bind parameter.
        value = lit.text if lit.type in ("number", "keyword") else json.dumps(lit.value)
        return self.binds("{" + json.dumps(target.key) + ": " + value + "}", "::jsonb")

    def in_list(self, target: Target, negate: bool) -> str:
        self.expect("(", what="'(' after in")
        items = [self.literal()]
        while self.tok.type == ",":
            self.take()
            items.append(self.literal())
            if len(items) > MAX_IN_LIST:
                raise bad_filter(f"an in list holds at most {MAX_IN_LIST} values", items[-1].pos, items[-1].text)
        self.expect(")", what="')' or ','")
        if target.document is not None:
            doc = target.document
            matches = " or ".join(f"{doc} @> {self.contains(target, lit)}" for lit in items)
            if negate:  # like SQL's NOT IN: a missing value matches neither way
                return (f"(coalesce(jsonb_typeof({doc} -> {self.key(target)}), 'null') <> 'null' "
                        f"and not ({matches}))")
            return f"({matches})"
        if target.column is not None:
            sql, values = target.column.sql, [self.column_value(target, lit, "=") for lit in items]
        else:
            assert target.aggregate is not None
            sql = aggregate_of(self.fields, target.aggregate, self.key(target))
            values = [self.number(target, lit) for lit in items]
        return f"{sql} {'not ' if negate else ''}in ({', '.join(values)})"

    def like(self, target: Target, op: str, pattern: Token, negate: bool) -> str:
        if target.column is not None:
            sql = target.column.sql if target.column.kind == "text" else f"{target.column.sql}::text"
        elif target.document is not None:
            sql = text_of(target.document, self.key(target))
        else:
            raise bad_filter(f"{op} applies to text, not to a fold aggregate", pattern.pos, pattern.text)
        if _ends_with_escape(pattern.value):  # Postgres raises on it
            raise bad_filter("a like pattern cannot end with an unescaped \\", pattern.pos, pattern.text)
        return f"{sql} {'not ' if negate else ''}{op} {self.binds(pattern.value, '::text')}"

    def number(self, target: Target, lit: Token) -> str:
        if lit.type != "number":
            raise bad_filter(f"{target.name} is a number", lit.pos, lit.text)
        return self.binds(lit.value, "::numeric")

    def column_value(self, target: Target, lit: Token, op: str) -> str:
        assert target.column is not None
        return column_bind(self.binds, target.column, target.name, lit, op)


def _ends_with_escape(pattern: str) -> bool:
    trailing = len(pattern) - len(pattern.rstrip("\\"))
    return trailing % 2 == 1


def column_bind(binds: Binds, column: Column, name: str, lit: Token, op: str) -> str:
    """A literal as a bind parameter of the column's type, checked here (so no cast can fail in SQL)."""
    if column.kind == "number":
        if lit.type != "number":
            raise bad_filter(f"{name} is a number", lit.pos, lit.text)
        return binds(lit.value, "::numeric")
    if column.kind == "time":
        return binds(to_time(lit, name), "::timestamptz")
    if lit.type != "string":
        raise bad_filter(f"{name} compares with a 'string'", lit.pos, lit.text)
    if column.kind == "uuid":
        if op not in ("=", "<>"):
            raise bad_filter(f"{name} compares only with =, != and in", lit.pos, lit.text)
        found = as_uuid(lit.value)
        if found is None:
            raise bad_filter(f"{name} is a UUID", lit.pos, lit.text)
        return binds(found, "::uuid")
    return binds(lit.value, "::text")


def to_time(lit: Token, name: str) -> datetime:
    """A time literal: an ISO 8601 string (UTC when it names no zone) or unix seconds."""
    try:
        if lit.type == "number":
            return datetime.fromtimestamp(float(lit.value), UTC)
        if lit.type == "string":
            parsed = datetime.fromisoformat(lit.value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise bad_filter(f"{name} is a time: an ISO 8601 'string' or unix seconds", lit.pos, lit.text)


def parse_filter(fields: Fields, text: str, binds: Binds) -> str:
    """The SQL condition of a filter expression (its values in `binds.params`), or a 400 that names
    the position (0-based character offset) and the offending token."""
    if len(text) > MAX_FILTER_CHARS:
        raise bad_filter(f"longer than {MAX_FILTER_CHARS} characters", MAX_FILTER_CHARS, text[MAX_FILTER_CHARS:])
    tokens = tokenize(text)
    if tokens[0].type == "end":
        raise bad_filter("empty expression", 0, "")
    parser = _Parser(fields, tokens, binds)
    condition = parser.expr()
    if parser.tok.type != "end":
        raise parser.error("expected and, or or the end", parser.tok)
    return condition
