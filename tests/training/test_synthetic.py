"""Synthetic queries: the bundled LLM writes them, the cache resumes, the round trip filters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tessera.data.corpus import open_corpus
from tessera.data.datasets import load_eval_dataset
from tessera.errors import DatasetError, TesseraError
from tessera.indexing.builder import build_index
from tessera.rag.generators import open_generator
from tessera.retrieval.index import Index
from tessera.training.synthetic import (
    QueryCache,
    SyntheticSettings,
    build_chat,
    check_synthetic_spec,
    clean_query,
    few_shot_examples,
    generate_queries,
    read_query_file,
    round_trip_filter,
    sample_documents,
)
from tests.conftest import run_cli


def test_clean_query_keeps_the_first_sentence_and_drops_copies() -> None:
    assert clean_query("Query: the effects of nickel on lung cancer in rats. the amount of") == (
        "the effects of nickel on lung cancer in rats"
    )
    assert clean_query('"how do shock waves form?" and more') == "how do shock waves form?"
    assert (
        clean_query("\n\n  pulmonary alveolar proteinosis; pulmonary alveolar")
        == "pulmonary alveolar proteinosis"
    )
    assert clean_query("wing") is None  # too short to be a query
    assert clean_query(" ".join(["word"] * 40)) is None  # rambling
    shots = [("a document", "how can one detect transition phenomena in boundary layers .")]
    assert clean_query("how can one detect transition phenomena in boundary layers .", shots) is None


def test_few_shot_examples_come_from_the_training_split(data_dir: Path) -> None:
    folder = data_dir / "cranfield-beir"
    train = load_eval_dataset(folder, "train")
    texts = {doc.id: doc.contents for doc in open_corpus(folder)}
    shots = few_shot_examples(train, texts)
    assert len(shots) == 3 and shots == few_shot_examples(train, texts)
    assert {query for _, query in shots} <= {" ".join(q.split()) for q in train.queries.values()}
    assert len({text for text, _ in shots}) == 3
    chat = build_chat("a long document " * 100, shots)
    assert [m["role"] for m in chat] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert len(chat[-1]["content"].split()) < 120  # the document is cut to its first words
    assert few_shot_examples(None, texts) == []


@pytest.fixture(scope="module")
def tiny_corpus(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight MEDLINE abstracts as a JSONL corpus."""
    path = tmp_path_factory.mktemp("synthetic") / "corpus.jsonl"
    with (data_dir / "medline-beir" / "corpus.jsonl").open(encoding="utf-8") as source:
        path.write_text("".join(next(source) for _ in range(8)), encoding="utf-8")
    return path


class CountingLLM:
    """The real bundled LLM, counting the documents it is asked about."""

    def __init__(self) -> None:
        self.inner = open_generator("local")
        self.inner.repetition_penalty = 1.0
        self.asked = 0

    def generate_batch(self, chats, max_new_tokens):
        self.asked += len(chats)
        return self.inner.generate_batch(chats, max_new_tokens)


def test_generation_is_cached_resumed_and_filtered(tiny_corpus: Path, tmp_path: Path) -> None:
    docs = sample_documents(open_corpus(tiny_corpus), 4)
    assert len(docs) == 4 and docs == sample_documents(reversed(list(open_corpus(tiny_corpus))), 4)
    llm, cache_file = CountingLLM(), tmp_path / "cache.jsonl"
    first = generate_queries(docs, llm, QueryCache(cache_file), show_progress=False)
    assert llm.asked == 4 and len(first) >= 3  # the bundled model gives a query for most abstracts
    assert all(2 <= len(q.query.split()) <= 32 for q in first)
    assert {q.doc_id for q in first} <= {doc.id for doc in docs}
    # A second run reads every answer back and asks nothing.
    assert generate_queries(docs, llm, QueryCache(cache_file), show_progress=False) == first
    assert llm.asked == 4
    # A crash mid-line loses that line only; the resumed run asks for that one document again.
    raw = cache_file.read_bytes()
    cache_file.write_bytes(raw[:-5])
    assert generate_queries(docs, llm, QueryCache(cache_file), show_progress=False) == first
    assert llm.asked == 5
    assert len(cache_file.read_text().splitlines()) == 4
    # Round trip: a query is kept only when BM25 ranks its own document in the top k.
    bm25 = Index.load(build_index(tiny_corpus, tmp_path / "bm25", encoder="bm25", show_progress=False))
    kept = round_trip_filter(first, bm25, top_k=1)
    for query in first:
        top = bm25.search(query.query, 1)
        assert (query in kept) == (bool(top) and top[0].doc_id == query.doc_id)
    assert round_trip_filter(first, bm25, top_k=8) == first  # every document is in the top 8 of 8


def test_synth_queries_cli_writes_a_file_training_reads(tiny_corpus: Path, tmp_path: Path) -> None:
    output = tmp_path / "queries.jsonl"
    result = run_cli(
        "data", "synth-queries", str(tiny_corpus), "-o", str(output), "--max-docs", "4", "--top-k", "3"
    )
    assert "generated queries kept" in result.stdout
    queries = read_query_file(output)
    assert 1 <= len(queries) <= 4
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [(r["doc_id"], r["query"]) for r in rows] == [(q.doc_id, q.query) for q in queries]
    assert run_cli("data", "synth-queries", str(tiny_corpus), "-o", str(output), check=False).returncode == 1
    again = run_cli(
        "data",
        "synth-queries",
        str(tiny_corpus),
        "-o",
        str(tmp_path / "again.jsonl"),
        "--generator",
        str(output),
    )
    said = " ".join(again.stdout.split())  # rich wraps long paths
    n = len(queries)  # read as written, not a round trip
    assert f"{n} of {n} queries of" in said and "kept (their documents are in the corpus)" in said
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"doc_id": "1", "query": "ok query"}\n{"doc_id": "2"}\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:2"):
        read_query_file(bad)


def test_synth_queries_options_are_checked_before_generating_and_named_as_given(
    tiny_corpus: Path, tmp_path: Path
) -> None:
    """`--top-k 0` was checked only after the LLM had generated every query."""
    output = tmp_path / "queries.jsonl"
    for args, message in [
        (["--top-k", "0"], "field 'top-k': must be at least 1"),
        (["--max-docs", "-1"], "field 'max-docs': must be at least 1"),
        (["--filter", "bogus"], "field 'filter': 'bogus' is not an index directory"),
        (["--generator", "none"], "field 'generator': the synthetic source needs a generator"),
        (["--generator", "gone.jsonl"], "field 'generator': 'gone.jsonl' is no file of queries"),
    ]:
        result = run_cli("data", "synth-queries", str(tiny_corpus), "-o", str(output), *args, check=False)
        assert result.returncode == 1 and message in result.stderr and not output.exists()
    before = tiny_corpus.read_bytes()
    for target in (tiny_corpus, tmp_path):  # the corpus it reads, a folder: refused before the LLM loads
        result = run_cli(
            "data", "synth-queries", str(tiny_corpus), "-o", str(target), "--overwrite", check=False
        )
        assert (
            result.returncode == 1 and "field 'output'" in result.stderr and "Traceback" not in result.stderr
        )
    assert tiny_corpus.read_bytes() == before
    short = tmp_path / "short.jsonl"  # "0 of 0 generated queries kept" read as a run that worked
    short.write_text('{"_id": "a", "text": "too short to ask"}\n')
    result = run_cli("data", "synth-queries", str(short), "-o", str(output), "--filter", "none", check=False)
    assert result.returncode == 1 and "no document of the corpus has the 8 words" in result.stderr


def test_a_query_file_s_queries_of_unknown_documents_are_left_out_with_a_warning(
    tiny_corpus: Path, tmp_path: Path
) -> None:
    from tessera.errors import TesseraWarning
    from tessera.training.synthetic import SyntheticSettings, synthetic_queries

    corpus = open_corpus(tiny_corpus)
    documents = list(corpus)
    known = documents[0].id
    path = tmp_path / "queries.jsonl"
    rows = [(known, "a question"), ("nosuch1", "lost"), ("nosuch2", "lost too")]
    path.write_text("".join(json.dumps({"doc_id": d, "query": q}) + "\n" for d, q in rows))
    with pytest.warns(TesseraWarning, match="2 of 3 queries are of documents not in the corpus"):
        kept, read = synthetic_queries(
            corpus, documents, None, {}, SyntheticSettings(generator=str(path)), False
        )
    assert [q.doc_id for q in kept] == [known] and read == 3


def test_the_generator_or_file_is_checked_where_the_source_is_used(tmp_path: Path) -> None:
    """`--synthetic gone.jsonl` was "unknown generator"; an unused `--synthetic` is not checked."""
    SyntheticSettings(generator=str(tmp_path / "gone.jsonl"))  # train --pairs titles --synthetic ...
    for spec in (str(tmp_path / "gone.jsonl"), "local:"):
        with pytest.raises(TesseraError, match="is no file of queries .*, nor a generator") as bad:
            check_synthetic_spec(spec)
        assert bad.value.field == "synthetic"
    for spec in ("local", "none", "local:smollm2", "http://127.0.0.1:9/v1#m"):
        check_synthetic_spec(spec)
