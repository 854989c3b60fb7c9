"""Filters over the doc store: each operator selects exactly the documents it should, types never
mix, lists match by element, and doc stores written before metadata existed still open."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tessera.data.document import Document
from tessera.data.metadata import parse_filter
from tessera.indexing.docstore import DocStore

RECORDS = {
    "a": {"year": 1958, "lang": "en", "tags": ["flow", "wing"], "peer": True},
    "b": {"year": 1962.5, "lang": "fr", "tags": ["flow"], "peer": False},
    "c": {"year": "1958", "lang": "en", "tags": [], "note": None},
    "d": {},
    "e": {"year": 1970, "lang": "de", "tags": ["heat", 7]},
}


@pytest.fixture
def store(tmp_path: Path) -> DocStore:
    store = DocStore(tmp_path / DocStore.FILE)
    store.add(0, [Document(doc_id, f"text {doc_id}", metadata=meta) for doc_id, meta in RECORDS.items()])
    return store


@pytest.mark.parametrize(
    ("where", "ids"),
    [
        ({"year": 1958}, "a"),  # the string "1958" is not the number 1958
        ({"year": "1958"}, "c"),
        ({"year": {"$gte": 1958, "$lt": 1970}}, "ab"),
        ({"year": {"$gt": 1962}}, "be"),
        ({"year": {"$lte": "1999"}}, "c"),  # strings order with strings only
        ({"year": {"$ne": 1958}}, "bcde"),  # a missing field is not equal: MongoDB's $ne
        ({"tags": "flow"}, "ab"),  # a list matches by any element
        ({"tags": 7}, "e"),
        ({"tags": {"$in": ["wing", "heat"]}}, "ae"),
        ({"tags": {"$nin": ["flow"]}}, "cde"),
        ({"lang": {"$in": ["en", 1958, None]}}, "ac"),
        ({"peer": True}, "a"),
        ({"peer": False}, "b"),
        ({"note": None}, "c"),
        ({"note": {"$exists": True}}, "c"),
        ({"year": {"$exists": False}}, "d"),
        ({"tags": {"$exists": True}}, "abce"),  # an empty list exists
        ({"lang": "en", "year": {"$gt": 1900}}, "a"),
        ({"$or": [{"lang": "fr"}, {"tags": "heat"}]}, "be"),
        ({"$and": [{"tags": "flow"}, {"$or": [{"peer": False}, {"year": 1958}]}]}, "ab"),
        ({"missing": 1}, ""),
    ],
)
def test_each_operator_selects_exactly(store: DocStore, where: dict, ids: str) -> None:
    assert store.matching(parse_filter(where)) == set(ids)


def test_a_long_in_list_is_one_shallow_expression(store: DocStore) -> None:
    values = [f"t{n}" for n in range(999)] + ["wing"]
    assert store.matching(parse_filter({"tags": {"$in": values}})) == {"a"}


def test_metadata_is_stored_and_read_back(store: DocStore) -> None:
    assert {d.id: d.metadata for d in store.documents()} == RECORDS
    assert store.get(["e"])["e"].metadata == RECORDS["e"]


@pytest.mark.parametrize("columns", ["source TEXT", "source TEXT, metadata TEXT"])
def test_a_store_from_before_metadata_or_stamps_opens_and_gains_the_columns(tmp_path: Path, columns) -> None:
    path = tmp_path / DocStore.FILE
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE docs (ordinal INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
            f"title TEXT NOT NULL, text TEXT NOT NULL, {columns})"
        )
        nulls = ", ".join(["NULL"] * (columns.count(",") + 1))
        db.execute(f"INSERT INTO docs VALUES (0, 'old', '', 'old text', {nulls})")
    db.close()
    reader = DocStore(path, readonly=True)
    assert reader.get(["old"])["old"].metadata == {} and reader.get(["old"])["old"].stamp is None
    assert reader.matching(parse_filter({"a": 1})) == set()
    assert reader.matching(parse_filter({"a": {"$exists": False}})) == {"old"}
    assert reader.stamps(["old"]) == {}
    reader.close()
    writer = DocStore(path)  # an update adds documents with metadata and stamps to it
    writer.add(1, [Document("new", "new text", metadata={"a": 1}, stamp="8:1000")])
    assert writer.matching(parse_filter({"a": 1})) == {"new"}
    writer.set_stamps({"old": "9:2000"})
    writer.renumber()
    assert {d.id: d.metadata for d in writer.documents()} == {"old": {}, "new": {"a": 1}}
    assert writer.stamps(["old", "new", "absent"]) == {"old": "9:2000", "new": "8:1000"}
    writer.close()
