"""`index --chunk`: passages that fit the encoder, MaxP search, resume, reindex, refusals."""

from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tessera.data.document import Document
from tessera.errors import IndexFormatError, TesseraError, TesseraWarning
from tessera.indexing.builder import build_index
from tessera.indexing.chunking import Chunking, PassageSplitter
from tessera.indexing.docstore import DocStore
from tessera.indexing.manifest import Manifest
from tessera.indexing.reindex import reindex
from tessera.models.registry import load_encoder
from tessera.retrieval.index import Index
from tests.conftest import kill_then_resume, run_cli

CHUNK = "48:8"
QUERIES = [
    "what similarity laws must be obeyed when constructing aeroelastic models",
    "boundary layer transition at supersonic speeds",
    "heat transfer to a blunt body in hypersonic flow",
]


@pytest.fixture(scope="module")
def chunked(cranfield_head: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("chunked") / "cran-chunked"
    run_cli("index", str(cranfield_head / "corpus.jsonl"), "-o", str(out), "--chunk", CHUNK)
    return out


def test_parse_and_refuse_bad_chunk_specs() -> None:
    assert Chunking.parse("256") == Chunking(256, 0)
    assert Chunking.parse("256:32").spec == "256:32"
    for bad, message in (("abc", "TOKENS or TOKENS:OVERLAP"), ("4", "at least 8"), ("64:40", "under half")):
        with pytest.raises(TesseraError, match=message):
            Chunking.parse(bad)
    minilm = load_encoder("minilm")
    with pytest.raises(TesseraError, match="exceed the encoder's input of 256 tokens"):
        PassageSplitter(Chunking(512), minilm.tokenizer, minilm.max_tokens)


def test_passages_fit_the_window_cover_the_text_and_overlap(cranfield_docs: dict[str, dict]) -> None:
    minilm = load_encoder("minilm")
    tokenizer = minilm.tokenizer
    splitter = PassageSplitter(Chunking(48, 8), tokenizer, minilm.max_tokens)
    docs = [Document(i, d["text"], d["title"]) for i, d in list(cranfield_docs.items())[:60]]
    docs.append(Document("empty", "", "a title only"))
    spans = splitter.spans(docs)
    assert spans[-1] == [(0, 0)]
    assert all(len(tokenizer(text)["input_ids"]) <= 48 for text in splitter.texts(docs, spans))
    multi = 0
    for doc, row in zip(docs[:-1], spans[:-1], strict=True):
        body = tokenizer(doc.text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        assert row[0][0] == body[0][0] and row[-1][1] == body[-1][1]  # the whole body, nothing lost
        starts = [next(i for i, o in enumerate(body) if o[0] == s) for s, _ in row]
        ends = [next(i for i, o in enumerate(body) if o[1] == e) for _, e in row]
        for a_end, b_start in zip(ends[:-1], starts[1:], strict=True):
            assert 8 <= a_end + 1 - b_start <= 16  # about OVERLAP wordpieces, whole words
        multi += len(row) > 1
    assert multi > 30


def test_a_long_title_is_cut_for_the_encoder_not_the_body(cranfield_docs: dict[str, dict]) -> None:
    """A 66-word title left the body 16 wordpieces a passage, fewer than fit past the overlap: one
    document of 2,935 words became 1,066 passages; a title longer than the window left the encoder
    none of the body."""
    minilm = load_encoder("minilm")
    splitter = PassageSplitter(Chunking(128, 32), minilm.tokenizer, minilm.max_tokens)
    values = list(cranfield_docs.values())
    body = " ".join(d["text"] for d in values[:20])
    long_title = " ".join(d["title"] for d in values[20:27])
    docs = [
        Document("short", body, "a report"),
        Document("long", body, long_title),
        Document("huge", body, long_title * 5),
    ]
    spans = splitter.spans(docs)
    assert len(spans[0]) <= len(spans[1]) <= len(spans[2]) < 2 * len(spans[0])
    for doc, row, text in zip(
        docs, spans, [splitter.texts([d], [s]) for d, s in zip(docs, spans, strict=True)], strict=True
    ):
        for (start, end), passage in zip(row, text, strict=True):
            assert (
                passage.endswith(doc.text[start:end]) and len(minilm.tokenizer(passage)["input_ids"]) <= 128
            )
            assert len(
                minilm.tokenizer(doc.text[start:end], add_special_tokens=False)["input_ids"]
            ) >= 33 or end == len(doc.text.rstrip())


def test_maxp_equals_brute_force_max_over_passages(chunked: Path) -> None:
    manifest = Manifest.read(chunked)
    assert manifest.chunking["tokens"] == 48 and manifest.chunking["overlap"] == 8
    rows = np.load(chunked / "passages.npy")
    assert manifest.chunking["passages"] == len(rows) > manifest.doc_count == 150
    store = DocStore(chunked / DocStore.FILE, readonly=True)
    docs = list(store.documents())
    store.close()
    minilm = load_encoder("minilm")
    passage_vectors = minilm.encode_docs(passage_texts(chunked, docs, rows))
    index = Index.load(chunked)
    for k in (10, 150):  # 150: every document, which needs the search to widen past the first fetch
        found = index.batch_search(QUERIES, k=k, with_text=True)
        for query, hits in zip(minilm.encode_queries(QUERIES), found, strict=True):
            scores = passage_vectors @ query
            best = np.full(len(docs), -np.inf)
            np.maximum.at(best, rows[:, 0], scores)
            order = np.argsort(-best, kind="stable")[:k]
            assert [h.doc_id for h in hits] == [docs[i].id for i in order]
            np.testing.assert_allclose([h.score for h in hits], best[order], atol=1e-5)
            top = hits[0]
            doc_rows = np.flatnonzero(rows[:, 0] == order[0])
            label = doc_rows[np.argmax(scores[doc_rows])]
            assert top.offsets == tuple(rows[label, 1:]) and top.passage == top.text[slice(*top.offsets)]


def test_a_restricted_chunked_search_is_maxp_restricted(chunked: Path) -> None:
    """Chunked indexes rank deep for a restriction: the MaxP ranking with the others removed, each
    hit still with its best passage."""
    index = Index.load(chunked)
    full = index.search(QUERIES[1], k=len(index))
    allowed = [hit.doc_id for hit in full[40:]]  # found only by ranking deep
    hits = index.search(QUERIES[1], k=5, with_text=True, doc_ids=allowed)
    assert [(h.doc_id, h.score, h.offsets) for h in hits] == [
        (h.doc_id, h.score, h.offsets) for h in full[40:45]
    ]
    assert all(h.passage and h.passage == h.text[h.offsets[0] : h.offsets[1]] for h in hits)


def brute_force_passages(index_dir: Path, query: str) -> tuple[np.ndarray, np.ndarray, list[Document]]:
    """Every passage's score for `query`, the passage map, the documents: the exact answer."""
    rows = np.load(index_dir / "passages.npy")
    store = DocStore(index_dir / DocStore.FILE, readonly=True)
    docs = list(store.documents())
    store.close()
    minilm = load_encoder("minilm")
    vectors = minilm.encode_docs(passage_texts(index_dir, docs, rows))
    return vectors @ minilm.encode_queries([query])[0], rows, docs


def passage_texts(index_dir: Path, docs: list[Document], rows: np.ndarray) -> list[str]:
    """What the index's encoder read for each passage row: its title and the text at its offsets."""
    chunking = Manifest.read(index_dir, verify=False).chunking
    minilm = load_encoder("minilm")
    splitter = PassageSplitter(
        Chunking(chunking["tokens"], chunking["overlap"]), minilm.tokenizer, minilm.max_tokens
    )
    return [splitter.texts([docs[d]], [[(s, e)]])[0] for d, s, e in rows]


def capped(
    scores: np.ndarray, rows: np.ndarray, cap: int, k: int, allowed: set[int] | None = None
) -> list[int]:
    """The best k passages, at most `cap` of one document (and only `allowed` documents)."""
    taken: dict[int, int] = {}
    picked = []
    for label in np.argsort(-scores, kind="stable"):
        doc = int(rows[label, 0])
        if (allowed is None or doc in allowed) and taken.get(doc, 0) < cap:
            taken[doc] = taken.get(doc, 0) + 1
            picked.append(int(label))
    return picked[:k]


def test_per_document_gives_the_best_passages_several_of_one_document(chunked: Path) -> None:
    """`per_document=N`: the k best passages, at most N of one document, each a hit with its own
    offsets and passage text: what a RAG context over long documents is built from."""
    index = Index.load(chunked)
    scores, rows, docs = brute_force_passages(chunked, QUERIES[0])
    for cap in (2, 10):
        hits = index.search(QUERIES[0], k=10, with_text=True, per_document=cap)
        expected = capped(scores, rows, cap, 10)
        assert [(h.doc_id, h.offsets) for h in hits] == [
            (docs[rows[n, 0]].id, tuple(rows[n, 1:])) for n in expected
        ]
        np.testing.assert_allclose([h.score for h in hits], scores[expected], atol=1e-5)
        assert [h.rank for h in hits] == list(range(1, 11))
        assert all(h.passage == h.text[h.offsets[0] : h.offsets[1]] for h in hits)
    uncapped = index.search(QUERIES[0], k=10, per_document=10)
    assert max(Counter(h.doc_id for h in uncapped).values()) > 1  # several passages of one document
    assert [h.doc_id for h in index.search(QUERIES[0], k=10, per_document=1)] == [
        h.doc_id for h in index.search(QUERIES[0], k=10)
    ]
    # restricted to three documents: all of their passages (up to k), best first
    chosen = [h.doc_id for h in index.search(QUERIES[0], k=len(index))[60:63]]
    ordinals = {n for n, doc in enumerate(docs) if doc.id in chosen}
    hits = index.search(QUERIES[0], k=10, doc_ids=chosen, per_document=10)
    expected = capped(scores, rows, 10, 10, ordinals)
    assert [(h.doc_id, h.offsets) for h in hits] == [
        (docs[rows[n, 0]].id, tuple(rows[n, 1:])) for n in expected
    ]
    with pytest.raises(TesseraError, match="at least 1"):
        index.search(QUERIES[0], per_document=0)


def test_cli_search_and_rag_take_passages(chunked: Path, cranfield_head: Path, tmp_path: Path) -> None:
    index = Index.load(chunked)
    found = run_cli("search", str(chunked), QUERIES[0], "-k", "5", "--per-document", "5", "--json")
    expected = index.search(QUERIES[0], 5, per_document=5)
    assert [(h["doc_id"], tuple(h["offsets"])) for h in json.loads(found.stdout)] == [
        (h.doc_id, h.offsets) for h in expected
    ]
    queries = str(cranfield_head / "queries.jsonl")
    refused = run_cli(
        "search",
        str(chunked),
        "--queries",
        queries,
        "--run",
        str(tmp_path / "r"),
        "--per-document",
        "2",
        check=False,
    )
    assert refused.returncode == 1 and "a TREC run ranks documents" in refused.stderr
    rag = json.loads(
        run_cli(
            "rag", str(chunked), QUERIES[0], "-k", "5", "--per-document", "5", "--generator", "none", "--json"
        ).stdout
    )
    assert [(s["doc_id"], tuple(s["offsets"])) for s in rag["sources"]] == [
        (h.doc_id, h.offsets) for h in expected
    ]


def test_eval_and_fusion_take_a_chunked_index(chunked: Path, cranfield_head: Path, tmp_path: Path) -> None:
    bm25 = tmp_path / "bm25"
    run_cli("index", str(cranfield_head / "corpus.jsonl"), "-o", str(bm25), "--encoder", "bm25")
    alone, fused = tmp_path / "alone.json", tmp_path / "fused.json"
    common = ["--dataset", str(cranfield_head), "--split", "test", "--metrics", "nDCG@10"]
    run_cli("eval", str(chunked), *common, "--json", str(alone), "--run", str(tmp_path / "run.trec"))
    run_cli("eval", str(chunked), str(bm25), *common, "--json", str(fused))
    assert json.loads(alone.read_text())["nDCG@10"] > 0.3
    assert json.loads(fused.read_text())["nDCG@10"] > 0.3
    first = (tmp_path / "run.trec").read_text().splitlines()[0].split()
    assert first[2] in {doc.doc_id for doc in Index.load(chunked).search("x", k=150)}


def test_interrupted_chunked_build_resumes_to_the_same_index(
    chunked: Path, cranfield_head: Path, tmp_path: Path
) -> None:
    out = tmp_path / "resumed"
    args = ["index", str(cranfield_head / "corpus.jsonl"), "--chunk", CHUNK, "--batch-size", "10"]
    kill_then_resume(args, out, after=30, total=150)
    assert np.array_equal(np.load(out / "passages.npy"), np.load(chunked / "passages.npy"))
    resumed, whole = Index.load(out), Index.load(chunked)
    for a, b in zip(resumed.batch_search(QUERIES, k=10), whole.batch_search(QUERIES, k=10), strict=True):
        assert [h.doc_id for h in a] == [h.doc_id for h in b]
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-5)


def test_reindex_keeps_the_passage_map(chunked: Path, tmp_path: Path) -> None:
    out = reindex(chunked, tmp_path / "hnsw", "HNSW32", {"efSearch": 512}, show_progress=False)
    assert Manifest.read(out).chunking == Manifest.read(chunked).chunking
    exact = [h.doc_id for h in Index.load(chunked).search(QUERIES[0], k=10)]
    assert len(set(exact) & {h.doc_id for h in Index.load(out).search(QUERIES[0], k=10)}) >= 9


def test_chunking_refusals(chunked: Path, cranfield_head: Path, tmp_path: Path) -> None:
    corpus = str(cranfield_head / "corpus.jsonl")
    with pytest.raises(TesseraError, match="'bm25' is not one"):
        build_index(corpus, tmp_path / "bm25", encoder="bm25", chunk="64", show_progress=False)
    result = run_cli("index", corpus, "-o", str(tmp_path / "x"), "--chunk", "64:40", check=False)
    assert result.returncode != 0 and "chunk" in result.stderr and "under half" in result.stderr
    pq = reindex(chunked, tmp_path / "pq", "PQ16", show_progress=False)
    from tessera.training.jpq import load_pq_index

    with pytest.raises(TesseraError, match="holds passages"):
        load_pq_index(pq, Manifest.read(pq))
    assert not (tmp_path / "bm25").exists() and not (tmp_path / "x").exists()


def test_a_damaged_passage_map_is_refused(chunked: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(chunked, copy)
    rows = np.load(copy / "passages.npy")
    np.save(copy / "passages.npy", rows[:-1])
    with pytest.raises(IndexFormatError, match="passage map has shape"):
        Index.load(copy, verify=False)


def test_a_build_says_how_many_documents_the_window_cut_short(
    cranfield_docs: dict[str, dict], tmp_path: Path
) -> None:
    docs = list(cranfield_docs.values())
    short = [d["text"] for d in docs if len(d["text"].split()) < 80][:3]
    long = [" ".join(d["text"] for d in docs[8 * n : 8 * n + 8]) for n in range(2)]  # over 256 wordpieces
    corpus = tmp_path / "c.jsonl"
    with corpus.open("w") as handle:
        for n, text in enumerate(long + short):
            handle.write(json.dumps({"_id": f"d{n}", "text": text}) + "\n")
    with pytest.warns(
        TesseraWarning, match=r"2 of 5 documents \(40%\) are longer than minilm's 256-token"
    ) as said:
        build_index(corpus, tmp_path / "flat", "minilm", show_progress=False)
    assert any(
        "`--chunk 128:32` indexes all of their text" in str(w.message) for w in said
    )  # results section 35
    with warnings.catch_warnings():
        warnings.simplefilter("error", TesseraWarning)  # passages fit the window: nothing to say
        build_index(corpus, tmp_path / "chunked", "minilm", chunk="128:32", show_progress=False)
    assert Chunking.suggested(512).spec == "128:32" and Chunking.suggested(64).spec == "64:16"
