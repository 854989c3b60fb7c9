"""Metadata as readers keep it and filters as users write them: checked whole, errors located."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tessera.data.metadata import parse_filter, strict_metadata
from tessera.data.readers import read_jsonl
from tessera.errors import CorpusError, TesseraError


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_jsonl_keeps_filterable_metadata_and_top_level_fields(tmp_path: Path) -> None:
    corpus = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {"_id": "a", "text": "x", "metadata": {"url": "u", "year": 1999, "evidence": {"1": [{"s": 2}]}}},
            {"id": "b", "contents": "y", "year": 2001, "tags": ["p", "q"], "nested": {"skip": 1}},
            {"_id": "c", "text": "z"},
        ],
    )
    docs = list(read_jsonl(corpus))
    assert [d.metadata for d in docs] == [{"url": "u", "year": 1999}, {"year": 2001, "tags": ["p", "q"]}, {}]


@pytest.mark.parametrize(
    ("record", "says"),
    [
        ({"_id": "a", "text": "x", "metadata": "flat"}, "field 'metadata': must be a JSON object"),
        ({"_id": "a", "text": "x", "metadata": [1]}, "field 'metadata': must be a JSON object"),
        ({"_id": "a", "text": "x", "year": 1, "metadata": {"year": 2}}, "field 'year': given both"),
    ],
)
def test_bad_metadata_names_file_line_and_field(tmp_path: Path, record: dict, says: str) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"_id": "ok", "text": "fine"}, record])
    with pytest.raises(CorpusError) as error:
        list(read_jsonl(corpus))
    assert f"c.jsonl:2, {says}" in str(error.value)


def test_numpy_scalars_are_numbers_and_keys_must_be_text() -> None:
    """A filter built with numpy: np.int64 was refused as "not a finite number", np.float64 taken."""
    import numpy as np

    given = {"year": {"$gte": np.int64(1958), "$in": [np.int32(1), np.float64(2.5)]}, "ok": np.bool_(True)}
    assert parse_filter(given) == {"year": {"$gte": 1958, "$in": [1, 2.5]}, "ok": True}
    assert type(parse_filter(given)["year"]["$gte"]) is int
    with pytest.raises(TesseraError, match="field names are text, not int") as info:
        parse_filter({1: 2})
    assert info.value.field == "filter.1"
    assert strict_metadata({"n": np.int64(3), "tags": [np.str_("a")]}, "texts[0]") == {"n": 3, "tags": ["a"]}
    with pytest.raises(TesseraError, match="integers within 64 bits") as info:
        strict_metadata({"n": 2**64}, "texts[0]")
    assert info.value.field == "texts[0].metadata.n"


def test_a_filter_is_read_from_json_text_or_a_mapping() -> None:
    text = '{"year": {"$gte": 1958, "$lt": 1962}, "$or": [{"lang": "en"}, {"tags": {"$in": ["a", 1]}}]}'
    assert parse_filter(text) == json.loads(text) == parse_filter(json.loads(text))
    assert parse_filter(None) is None


@pytest.mark.parametrize(
    ("given", "field", "says"),
    [
        ('{"year": ', "filter", "not valid JSON"),
        ("[1, 2]", "filter", "non-empty JSON object"),
        ("{}", "filter", "non-empty JSON object"),
        ('{"year": {"$between": [1, 2]}}', "filter.year.$between", "unknown operator"),
        ('{"$not": {"a": 1}}', "filter.$not", "unknown operator"),
        ('{"year": {"$gt": true}}', "filter.year.$gt", "finite number or a string"),
        ('{"year": {"$lt": null}}', "filter.year.$lt", "finite number or a string"),
        ('{"year": {"$gt": NaN}}', "filter.year.$gt", "finite number or a string"),
        ('{"tags": {"$in": "a"}}', "filter.tags.$in", "list of 1 to 1000"),
        ('{"tags": {"$in": [["a"]]}}', "filter.tags.$in", "string, finite number"),
        ('{"tags": ["a"]}', "filter.tags", "string, finite number"),
        ('{"a": {"$exists": 1}}', "filter.a.$exists", "true or false"),
        ('{"a": {}}', "filter.a", "no condition"),
        ('{"$or": []}', "filter.$or", "non-empty list"),
        ('{"$and": [{"a": 1}, {"b": {"$gte": {}}}]}', "filter.$and[1].b.$gte", "finite number"),
        ('{"a\\"b": 1}', 'filter.a"b', "cannot contain"),
        ('{"year": {"$lt": 1000000000000000000000}}', "filter.year.$lt", "integers within 64 bits"),
    ],
)
def test_a_bad_filter_names_the_key(given: str, field: str, says: str) -> None:
    with pytest.raises(TesseraError) as error:
        parse_filter(given)
    assert error.value.field == field and says in error.value.message


def test_nesting_is_bounded() -> None:
    deep: dict = {"a": 1}
    for _ in range(12):
        deep = {"$and": [deep]}
    with pytest.raises(TesseraError, match="nested more than"):
        parse_filter(deep)
