"""The Glasgow loaders against the real files: exact counts, and CISI/MEDLINE equal to their BEIR copies.

The BEIR copies beside the originals (cisi-beir/, medline-beir/) were written by an independent
converter with the same field rules (see their PROVENANCE.md), so equality is the strongest check
that the SMART parser reads every record, field and id correctly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import ir_datasets
import pytest

from tessera.data import glasgow, smart
from tessera.errors import CorpusError, DatasetError

DATA = Path(os.environ.get("TESSERA_DATA_DIR") or Path(__file__).resolve().parents[3] / "shared" / "data")

# name: (docs, queries, judgements, judged queries)
COUNTS = {
    "cisi": (1460, 112, 3114, 76),
    "medline": (1033, 30, 696, 30),
    "lisa": (5999, 35, 379, 35),  # 6,003 records, 1998-2001 twice
}


def _needs(*folders: str) -> None:
    missing = [name for name in folders if not (DATA / name).is_dir()]
    if missing:
        pytest.skip(f"no local copy of {', '.join(missing)} under {DATA}")


@pytest.fixture(scope="module")
def registered() -> None:
    glasgow.register(DATA)


def _dataset(name: str):
    _needs(name)
    return ir_datasets.load(f"glasgow/{name}")


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_counts(registered: None, name: str) -> None:
    dataset = _dataset(name)
    docs, queries, qrels, judged = COUNTS[name]
    doc_ids = [doc.doc_id for doc in dataset.docs_iter()]
    query_ids = [query.query_id for query in dataset.queries_iter()]
    pairs = [(qrel.query_id, qrel.doc_id) for qrel in dataset.qrels_iter()]
    assert (len(doc_ids), len(set(doc_ids)), dataset.docs_count()) == (docs, docs, docs)
    assert (len(query_ids), len(set(query_ids))) == (queries, queries)
    assert (len(pairs), len(set(pairs)), len({qid for qid, _ in pairs})) == (qrels, qrels, judged)
    assert {did for _, did in pairs} <= set(doc_ids)
    assert {qid for qid, _ in pairs} <= set(query_ids)
    assert {qrel.relevance for qrel in dataset.qrels_iter()} == {1}
    assert dataset.qrels_defs() == {1: "relevant"}
    assert dataset.docs_lang() == "en"


def _jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.mark.parametrize("name", ["cisi", "medline"])
def test_equals_beir_copy(registered: None, name: str) -> None:
    _needs(name, f"{name}-beir")
    dataset = _dataset(name)
    beir = DATA / f"{name}-beir"
    docs = [{"_id": d.doc_id, "title": d.title, "text": d.text} for d in dataset.docs_iter()]
    assert docs == _jsonl(beir / "corpus.jsonl")
    queries = [{"_id": q.query_id, "text": q.text} for q in dataset.queries_iter()]
    assert queries == _jsonl(beir / "queries.jsonl")
    header, *rows = (beir / "qrels" / "all.tsv").read_text(encoding="utf-8").splitlines()
    assert header.split("\t") == ["query-id", "corpus-id", "score"]
    qrels = [f"{q.query_id}\t{q.doc_id}\t{q.relevance}" for q in dataset.qrels_iter()]
    assert qrels == rows


def test_lisa_quirks(registered: None) -> None:
    dataset = _dataset("lisa")
    docs = {doc.doc_id: doc for doc in dataset.docs_iter()}
    assert set(map(int, docs)) == set(range(1, 6005)) - set(range(1993, 1998))
    assert docs["1998"].title.startswith("THE IMPACT OF VIDEODISC TECHNOLOGY")
    assert docs["1"].default_text().startswith("THE INDIAN COUNCIL OF LIBRARY")
    files = smart.lisa_doc_files(DATA / "lisa")
    assert len(files) == 14
    headers = sum(line.startswith(b"Document") for path in files for line in path.read_bytes().splitlines())
    assert headers == 6003  # so four records were dropped as repeats
    queries = list(dataset.queries_iter())
    assert all(query.text and not query.text.endswith("#") for query in queries)


def test_docs_store(registered: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    dataset = _dataset("medline")
    store = dataset.docs_store()
    assert store.get("5").text.startswith("free fatty acid concentration")
    assert dataset.docs_count() == 1033
    assert next(iter(dataset.docs_iter())).doc_id == "1"
    assert list((tmp_path / "ir_datasets" / "glasgow" / "medline").iterdir())


def test_missing_folder_raises_dataset_error(tmp_path: Path) -> None:
    (tmp_path / "medline").mkdir()
    (tmp_path / "lisa").mkdir()
    (tmp_path / "lisa" / "LISA.QUE").write_text("1\nQUERY. #\n")
    try:
        glasgow.register(tmp_path)
        glasgow.register(tmp_path)
        with pytest.raises(DatasetError, match="folder not found") as missing:
            list(ir_datasets.load("glasgow/cisi").docs_iter())
        assert missing.value.file == str(tmp_path / "cisi")
        with pytest.raises(DatasetError) as empty:
            ir_datasets.load("glasgow/medline").queries_iter()
        assert empty.value.file == str(tmp_path / "medline" / "MED.QRY")
        lisa = ir_datasets.load("glasgow/lisa")
        assert [q.text for q in lisa.queries_iter()] == ["QUERY."]
        with pytest.raises(DatasetError, match="LISARJ.NUM"):
            lisa.qrels_iter()
        with pytest.raises(DatasetError, match=r"LISA\[0-9\]"):
            lisa.docs_count()
    finally:
        glasgow.register(DATA)


MALFORMED = [
    # (reader, content, line, field)
    (smart.read_smart_docs, "oops\r\n.I 1\r\n.W\r\ntext\r\n", 1, None),
    (smart.read_smart_docs, ".I 1\r\n.T\r\nTitle\r\n.W\r\ntext\r\n.I x2\r\n.W\r\nmore\r\n", 6, ".I"),
    (smart.read_smart_docs, ".I 1\r\n.W\r\na\r\n.I 01\r\n.W\r\nb\r\n", 4, ".I"),
    (smart.read_smart_docs, ".I 1\r\n.W\r\na\r\n.Z\r\n", 4, None),
    (smart.read_smart_docs, ".I 1\r\nno marker\r\n", 2, None),
    (smart.read_smart_queries, ".T\r\n.I 1\r\n", 1, None),
    (smart.read_cisi_qrels, "1 28 0 0.000000\r\n1 0 13 1\r\n", 2, "column 3"),
    (smart.read_medline_qrels, "1 0 13 1\n2 0 1x 1\n", 2, "doc_id"),
    (smart.read_lisa_queries, "1\nTEXT. #\n2\nUNTERMINATED\n", 3, None),
    (smart.read_lisa_qrels, "1 2 10 11\n2 3 20\n  21\n", 3, None),
]


@pytest.mark.parametrize(("reader", "content", "line", "field"), MALFORMED)
def test_malformed_input_names_the_line(
    tmp_path: Path, reader: Callable[[Path], Iterator[object]], content: str, line: int, field: str | None
) -> None:
    path = tmp_path / "BAD.FILE"
    path.write_bytes(content.encode())
    with pytest.raises(CorpusError) as error:
        list(reader(path))
    assert (error.value.file, error.value.line, error.value.field) == (str(path), line, field)


def test_lisa_duplicates_keep_first_and_orphans_are_skipped(tmp_path: Path) -> None:
    first, second = tmp_path / "LISA0.001", tmp_path / "LISA0.002"
    first.write_text("Document  1\nTITLE ONE\n\nTEXT ONE.\n****************\nORPHAN LINE\n****************\n")
    second.write_text(
        "Document  1\nOTHER\n\nCOPY.\n****************\nDocument  02\nTWO\nLINES\n \nTEXT\nTWO\n"
    )
    docs = list(smart.read_lisa_docs(smart.lisa_doc_files(tmp_path)))
    assert docs == [
        smart.TitledDoc("1", "TITLE ONE", "TEXT ONE."),
        smart.TitledDoc("2", "TWO\nLINES", "TEXT\nTWO"),
    ]


def test_lisa_text_before_first_header(tmp_path: Path) -> None:
    path = tmp_path / "LISA0.001"
    path.write_text("\nstray\nDocument  1\nT\n\nX\n")
    with pytest.raises(CorpusError) as error:
        list(smart.read_lisa_docs([path]))
    assert (error.value.file, error.value.line) == (str(path), 2)
    path.write_text("Document  A1\nT\n")
    with pytest.raises(CorpusError, match="'A1'"):
        list(smart.read_lisa_docs([path]))


def test_cacm_layout(tmp_path: Path) -> None:
    """CACM in Glasgow's layout (no copy is shared here): the fields, zero-padded qrels ids."""
    folder = tmp_path / "cacm"
    folder.mkdir()
    (folder / "cacm.all").write_text(
        ".I 1\n.T\nPreliminary Report-International Algebraic Language\n.B\nCACM December, 1958\n"
        ".A\nPerlis, A. J.\n.N\nCA581203 JB March 22, 1978  8:28 PM\n.X\n100\t5\t1\n1\t5\t1\n"
        ".I 2\n.T\nExtraction of Roots by Repeated Subtractions\n.W\nA method is given.\n.B\nCACM 1958\n"
    )
    (folder / "query.text").write_text(
        ".I 1\n.W\n What articles exist which deal with TSS (Time Sharing System)?\n"
        ".N\n 1. Richard Alexander\n"
    )
    (folder / "qrels.text").write_text("01 2  0 0\n01 1 0 0\n")
    try:
        glasgow.register(tmp_path)
        cacm = ir_datasets.load("glasgow/cacm")
        assert [(d.doc_id, d.title, d.text) for d in cacm.docs_iter()] == [
            ("1", "Preliminary Report-International Algebraic Language", ""),
            ("2", "Extraction of Roots by Repeated Subtractions", "A method is given."),
        ]
        assert [(q.query_id, q.text) for q in cacm.queries_iter()] == [
            ("1", "What articles exist which deal with TSS (Time Sharing System)?")
        ]
        assert [(r.query_id, r.doc_id, r.relevance) for r in cacm.qrels_iter()] == [
            ("1", "2", 1),
            ("1", "1", 1),
        ]
    finally:
        glasgow.register(DATA)
