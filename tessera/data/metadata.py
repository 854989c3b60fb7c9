"""Document metadata and the filters that select documents by it.

Metadata is a flat JSON object: each value a string, number, boolean or null, or a list of
those (tags, authors). Filters use the operator names Chroma, Pinecone and MongoDB users know:

    {"author": "brenckman,m."}                     equality (a list field: any element equal)
    {"year": {"$gte": 1958, "$lt": 1962}}          operators on one field, all must hold
    {"$or": [{"lang": "en"}, {"tags": {"$in": ["a", "b"]}}]}

`$eq $ne $gt $gte $lt $lte $in $nin $exists`, and `$and`/`$or` over lists of filters; several
keys in one object must all hold. Comparisons never cross types: 1958 never equals "1958", and
`$gt` orders numbers with numbers and strings with strings (ISO dates compare as text). `$ne`
and `$nin` hold where the field is missing, as in MongoDB. A filter is checked whole before use,
and an error names the offending key (`filter.year.$gte`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tessera.errors import CorpusError, TesseraError

Scalar = str | int | float | bool | None
Metadata = dict[str, Scalar | list[Scalar]]
Filter = Mapping[str, Any] | str  # a filter object, or its JSON text
COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
LISTS = ("$in", "$nin")
LOGICAL = ("$and", "$or")
MAX_DEPTH = 8
MAX_VALUES = 1_000  # values of one $in/$nin (each is a query parameter)
INTEGERS = range(-(2**63), 2**63)  # SQLite's integers


def is_scalar(value: object) -> bool:
    """JSON's scalars; NaN and infinities are not JSON (SQLite's JSON functions refuse them)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (str, int, bool))


def _sqlite_int(value: object) -> bool:
    """Not an integer beyond SQLite's 64 bits, which a filter's parameter cannot be bound as."""
    return not isinstance(value, int) or isinstance(value, bool) or value in INTEGERS


def plain(value: object) -> object:
    """numpy's scalars (a value computed with numpy) as Python's, in lists and mappings too; the
    rest as it is."""
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    return value


def filterable(value: object) -> bool:
    """A value filters can select by: a scalar or a list of scalars."""
    return is_scalar(value) or (isinstance(value, list) and all(map(is_scalar, value)))


def check_metadata(value: object, file: str | Path | None = None, line: int | None = None) -> Metadata:
    """A record's metadata object, keeping the entries filters can select by; nested values
    (SciFact's evidence lists, objects) and names with '"' cannot be, and are not kept."""
    if not isinstance(value, Mapping):
        raise CorpusError(
            f"must be a JSON object, got {type(value).__name__}", file=file, line=line, field="metadata"
        )
    return {key: item for key, item in value.items() if key and '"' not in key and filterable(item)}


def strict_metadata(value: object, where: str) -> Metadata:
    """Metadata given through an API (`where` names the item in the caller's terms, e.g.
    `documents[3]`): what a filter could not select by is refused, never dropped."""
    value = {} if value is None else plain(value)
    if not isinstance(value, Mapping):
        raise TesseraError(f"must be a mapping, got {type(value).__name__}", field=f"{where}.metadata")
    for key, item in value.items():
        values = item if isinstance(item, list) else [item]
        if (
            not isinstance(key, str)
            or not key
            or '"' in key
            or not filterable(item)
            or not all(map(_sqlite_int, values))
        ):
            raise TesseraError(
                f"{item!r} cannot be stored: metadata are flat (strings, finite numbers, booleans, null, "
                "lists of those; integers within 64 bits) under names without '\"'",
                field=f"{where}.metadata.{key}",
            )
    return dict(value)


def parse_filter(value: Filter | None, field: str = "filter") -> dict[str, Any] | None:
    """A filter from JSON text (the CLI's `--filter`) or a mapping, checked; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise TesseraError(f"not valid JSON at column {exc.colno}: {exc.msg}", field=field) from None
    value = plain(value)
    _check_filter(value, field, 0)
    return dict(value)


def _check_filter(node: object, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise TesseraError(f"nested more than {MAX_DEPTH} deep", field=where)
    if not isinstance(node, Mapping) or not node:
        raise TesseraError("must be a non-empty JSON object", field=where)
    for key, value in node.items():
        here = f"{where}.{key}"
        if not isinstance(key, str):
            raise TesseraError(f"field names are text, not {type(key).__name__}", field=here)
        if key in LOGICAL:
            if not isinstance(value, list) or not value:
                raise TesseraError("must be a non-empty list of filters", field=here)
            for number, part in enumerate(value):
                _check_filter(part, f"{here}[{number}]", depth + 1)
        elif key.startswith("$"):
            raise TesseraError(f"unknown operator (fields: {', '.join(LOGICAL)} or a field name)", field=here)
        elif '"' in key:
            raise TesseraError("a field name cannot contain '\"'", field=here)
        elif isinstance(value, Mapping):
            _check_conditions(value, here)
        else:
            _check_operand("$eq", value, here)


def _check_conditions(conditions: Mapping[str, Any], where: str) -> None:
    if not conditions:
        raise TesseraError("no condition given", field=where)
    for op, operand in conditions.items():
        if op not in (*COMPARISONS, *LISTS, "$exists"):
            known = ", ".join((*COMPARISONS, *LISTS, "$exists"))
            raise TesseraError(f"unknown operator (known: {known})", field=f"{where}.{op}")
        _check_operand(op, operand, f"{where}.{op}")


def _check_operand(op: str, operand: object, where: str) -> None:
    if op == "$exists":
        if not isinstance(operand, bool):
            raise TesseraError("must be true or false", field=where)
    elif op in LISTS:
        if not isinstance(operand, list) or not operand or len(operand) > MAX_VALUES:
            raise TesseraError(f"must be a list of 1 to {MAX_VALUES} values", field=where)
        for value in operand:
            _check_operand("$eq", value, where)
    elif op in ("$eq", "$ne"):
        if not is_scalar(operand) or not _sqlite_int(operand):
            raise TesseraError(
                "must be a string, finite number, boolean or null (integers within 64 bits)", field=where
            )
    elif isinstance(operand, bool) or operand is None or not is_scalar(operand) or not _sqlite_int(operand):
        raise TesseraError("must be a finite number or a string (integers within 64 bits)", field=where)
