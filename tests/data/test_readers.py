from __future__ import annotations

import json
from pathlib import Path

import pytest

from tessera.data.corpus import open_corpus
from tessera.data.readers import read_jsonl, read_queries, read_query_texts, read_tsv
from tessera.errors import CorpusError


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_jsonl_reads_beir_corpus_exactly(data_dir: Path) -> None:
    docs = list(read_jsonl(data_dir / "cranfield-beir" / "corpus.jsonl"))
    assert len(docs) == 1400
    assert docs[0].id == "1"
    assert docs[0].title.startswith("experimental investigation of the aerodynamics of a")
    assert docs[0].line == 1 and docs[-1].line == 1400


def test_jsonl_accepts_id_and_contents_aliases(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", '{"id": 7, "contents": "seven"}\n\n{"_id": "b", "text": "bee"}\n')
    docs = list(read_jsonl(path))
    assert [(d.id, d.text, d.line) for d in docs] == [("7", "seven", 1), ("b", "bee", 3)]


def test_malformed_jsonl_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", '{"_id": "a", "text": "ok"}\n{"_id": "b", "text": "broken\n')
    with pytest.raises(CorpusError) as info:
        list(read_jsonl(path))
    assert info.value.file == str(path) and info.value.line == 2
    assert "malformed JSON" in str(info.value)


def test_missing_text_field_names_the_field(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", '{"_id": "a", "text": "ok"}\n{"_id": "b", "title": "no body"}\n')
    with pytest.raises(CorpusError) as info:
        list(read_jsonl(path))
    assert (info.value.line, info.value.field) == (2, "text")
    assert str(info.value).startswith(f"{path}:2, field 'text'")


def test_non_string_field_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", '{"_id": "a", "text": ["list"]}\n')
    with pytest.raises(CorpusError, match="must be a string") as info:
        list(read_jsonl(path))
    assert info.value.field == "text"


def test_non_utf8_bytes_name_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", b'{"_id": "a", "text": "ok"}\n{"_id": "b", "text": "caf\xe9"}\n')
    with pytest.raises(CorpusError, match="not valid UTF-8") as info:
        list(read_jsonl(path))
    assert info.value.line == 2


def test_tsv_two_and_three_columns_and_header(tmp_path: Path) -> None:
    path = write(tmp_path / "c.tsv", "id\ttext\nd1\tfirst doc\nd2\tTitle\tsecond doc\n")
    docs = list(read_tsv(path))
    assert [(d.id, d.title, d.text) for d in docs] == [("d1", "", "first doc"), ("d2", "Title", "second doc")]
    bad = write(tmp_path / "bad.tsv", "d1\tok\nd2\n")
    with pytest.raises(CorpusError, match="tab-separated") as info:
        list(read_tsv(bad))
    assert info.value.line == 2


def test_a_byte_order_mark_is_not_part_of_the_first_record(tmp_path: Path) -> None:
    bom = b"\xef\xbb\xbf"
    tsv = write(tmp_path / "c.tsv", bom + b"id\ttext\r\nd1\tfirst doc\r\n")
    assert [(d.id, d.text, d.line) for d in read_tsv(tsv)] == [("d1", "first doc", 2)]
    jsonl = write(tmp_path / "c.jsonl", bom + b'{"_id": "a", "text": "x"}\n')
    assert [(d.id, d.text) for d in read_jsonl(jsonl)] == [("a", "x")]
    middle = write(tmp_path / "m.tsv", b"d1\tok\n" + bom + b"d2\tok\n")
    assert [d.id for d in read_tsv(middle)] == ["d1", "\ufeffd2"]  # only a file's first bytes are a mark


def test_queries_keep_ids_in_file_order_and_refuse_a_repeated_id(tmp_path: Path) -> None:
    path = write(tmp_path / "q.tsv", "q9\tboundary layer\nq1\tshock waves\n")
    assert read_queries(path) == {"q9": "boundary layer", "q1": "shock waves"}
    assert list(read_queries(path)) == ["q9", "q1"]
    jsonl = write(tmp_path / "q.jsonl", '{"_id": "a", "text": "one"}\n{"_id": "a", "text": "two"}\n')
    with pytest.raises(CorpusError, match="query id 'a' repeated") as info:
        read_queries(jsonl)
    assert (info.value.file, info.value.line, info.value.field) == (str(jsonl), 2, "id")
    assert read_query_texts(jsonl) == ["one", "two"]  # tuning samples need no unique ids
    blank = write(tmp_path / "b.tsv", "q1\tfine\nq2\t  \n")
    with pytest.raises(CorpusError, match="the query is empty") as info:
        read_queries(blank)
    assert (info.value.line, info.value.field) == (2, "text")
    for name, content, message in [
        ("q.txt", "a b", "must be a .jsonl or .tsv"),
        ("e.tsv", "", "has no queries"),
    ]:
        with pytest.raises(CorpusError, match=message) as info:
            read_queries(write(tmp_path / name, content), field="queries")
        assert info.value.field == "queries"


def test_open_corpus_dispatches_every_format(tmp_path: Path, data_dir: Path) -> None:
    assert open_corpus(data_dir / "cranfield-beir").kind == "beir"
    assert open_corpus(data_dir / "cranfield-beir" / "corpus.jsonl").size_hint == 1400
    cran = open_corpus("cranfield")
    assert (cran.kind, cran.size_hint) == ("ir_datasets", 1400)
    first = next(iter(cran))
    assert first.id == "1" and first.contents.startswith(first.title + " ")
    write(tmp_path / "x.txt", "hello")
    assert open_corpus(tmp_path).kind == "files"  # text, Markdown, HTML, PDF: tests/data/test_files.py
    with pytest.raises(CorpusError, match="neither an existing file"):
        open_corpus("no/such/dataset-id")
    with pytest.raises(CorpusError, match="unknown corpus format"):
        open_corpus(write(tmp_path / "c.csv", "a,b"))


def test_fingerprint_changes_when_the_file_changes(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", json.dumps({"_id": "a", "text": "x"}) + "\n")
    before = open_corpus(path).fingerprint
    write(path, json.dumps({"_id": "a", "text": "xy"}) + "\n")
    assert open_corpus(path).fingerprint != before
