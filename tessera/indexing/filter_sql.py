"""A checked metadata filter (data/metadata.py) as one SQLite WHERE clause over the doc store.

Each field condition is an EXISTS over `json_each(metadata, path)`, which walks a list's
elements and yields a scalar as one row, so `{"tags": "a"}` matches "a" and ["a", "b"] alike.
`json_each`'s `type` column keeps comparisons within one JSON type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SQL_OPS = {"$eq": "=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
Clause = tuple[str, list[Any]]


def filter_sql(node: Mapping[str, Any]) -> Clause:
    """`(sql, parameters)` true for the rows the filter selects (`node` already checked)."""
    parts = [_key(key, value) for key, value in node.items()]
    return _join(parts, "AND")


def _join(parts: list[Clause], word: str) -> Clause:
    sql = f" {word} ".join(f"({p})" for p, _ in parts)
    return sql, [value for _, values in parts for value in values]


def _key(key: str, value: Any) -> Clause:
    if key in ("$and", "$or"):
        return _join([filter_sql(part) for part in value], key[1:].upper())
    conditions = value if isinstance(value, Mapping) else {"$eq": value}
    return _join([_condition(f'$."{key}"', op, operand) for op, operand in conditions.items()], "AND")


def _condition(path: str, op: str, operand: Any) -> Clause:
    if op == "$exists":
        return f"json_type(metadata, ?) IS {'NOT ' if operand else ''}NULL", [path]
    if op in ("$ne", "$nin"):
        sql, values = _condition(path, "$eq" if op == "$ne" else "$in", operand)
        return f"NOT ({sql})", values
    sql, params = _members(operand) if op == "$in" else _typed(SQL_OPS[op], operand)
    return f"EXISTS (SELECT 1 FROM json_each(metadata, ?) WHERE {sql})", [path, *params]


def _members(values: list[Any]) -> Clause:
    """Membership in `values`: one IN list per JSON type, so a long list stays one shallow
    expression (SQLite caps expression depth at 1000)."""
    strings = [v for v in values if isinstance(v, str)]
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    tests = [_typed("=", v) for v in dict.fromkeys(v for v in values if v is None or isinstance(v, bool))]
    for kind, group in (("= 'text'", strings), ("IN ('integer', 'real')", numbers)):
        if group:
            tests.append((f"type {kind} AND value IN ({','.join('?' * len(group))})", group))
    return _join(tests, "OR")


def _typed(sql_op: str, value: Any) -> Clause:
    """`value`'s JSON type test and comparison against `json_each`'s row."""
    if value is None:
        return "type = 'null'", []
    if isinstance(value, bool):
        return f"type = '{'true' if value else 'false'}'", []
    if isinstance(value, str):
        return f"type = 'text' AND value {sql_op} ?", [value]
    return f"type IN ('integer', 'real') AND value {sql_op} ?", [value]
