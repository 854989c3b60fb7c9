"""LangChain's vector store over a Tessera index: LangChain's own standard test suite
(langchain-tests: add, upsert by id, delete, get by id, sync and async), and on real Cranfield
documents the same hits as an index built from them by the CLI, filters, MMR, scores, a BM25
store, refused input that leaves the index as it was, and the store emptied and built again."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from tessera.data.corpus import open_corpus
from tessera.errors import TesseraError
from tessera.indexing.builder import build_index
from tessera.indexing.manifest import Manifest
from tessera.retrieval.index import Index

langchain_core = pytest.importorskip("langchain_core")
langchain_tests = pytest.importorskip("langchain_tests")
from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import DeterministicFakeEmbedding  # noqa: E402
from langchain_tests.integration_tests import VectorStoreIntegrationTests  # noqa: E402

from tessera.integrations.langchain import TesseraEmbeddings, TesseraVectorStore  # noqa: E402

QUERY = "boundary layer flow"


class TestLangChainStandard(VectorStoreIntegrationTests):
    """Every test of LangChain's contract for vector stores, on a MiniLM Flat index."""

    @pytest.fixture
    def vectorstore(self, tmp_path: Path) -> Iterator[TesseraVectorStore]:
        store = TesseraVectorStore(tmp_path / "store")
        yield store
        store.delete()


HEAD = 60


@pytest.fixture(scope="module")
def head_documents(data_dir: Path) -> list[Document]:
    """The first 60 Cranfield documents with their author and bib, as a LangChain user holds them."""
    corpus = iter(open_corpus("cranfield"))
    return [Document(id=d.id, page_content=d.text, metadata=d.metadata) for d in islice(corpus, HEAD)]


@pytest.fixture(scope="module")
def head_store(
    head_documents: list[Document], tmp_path_factory: pytest.TempPathFactory
) -> TesseraVectorStore:
    return TesseraVectorStore.from_documents(
        head_documents, TesseraEmbeddings("minilm"), path=tmp_path_factory.mktemp("stores") / "head"
    )


def test_the_store_finds_what_an_index_of_the_same_texts_finds(
    head_store: TesseraVectorStore, head_documents: list[Document], tmp_path: Path
) -> None:
    corpus = tmp_path / "texts.jsonl"
    lines = (json.dumps({"_id": d.id, "text": d.page_content}) + "\n" for d in head_documents)
    corpus.write_text("".join(lines))
    expected = Index.load(build_index(corpus, tmp_path / "index", show_progress=False)).search(QUERY, k=5)
    found = head_store.similarity_search_with_score(QUERY, k=5)
    assert [doc.id for doc, _ in found] == [h.doc_id for h in expected]
    np.testing.assert_allclose([score for _, score in found], [h.score for h in expected], atol=1e-5)
    assert Manifest.read(head_store.path).encoder == "minilm" and len(head_store.store) == HEAD
    by_vector = head_store.similarity_search_by_vector(head_store.embeddings.embed_query(QUERY), k=5)
    assert [doc.id for doc in by_vector] == [h.doc_id for h in expected]
    relevance = head_store.similarity_search_with_relevance_scores(QUERY, k=5)
    np.testing.assert_allclose([r for _, r in relevance], [(1 + h.score) / 2 for h in expected], atol=1e-5)
    assert [doc.id for doc in head_store.as_retriever(search_kwargs={"k": 3}).invoke(QUERY)] == [
        h.doc_id for h in expected[:3]
    ]


def test_filters_mmr_and_get_by_ids(head_store: TesseraVectorStore, head_documents: list[Document]) -> None:
    docs = {doc.id: doc for doc in head_documents}
    where = {"bib": {"$gte": "naca", "$lt": "nacb"}}
    selected = {i for i, d in docs.items() if "naca" <= d.metadata.get("bib", "") < "nacb"}
    assert selected, "the filter should select some head documents"
    filtered = head_store.similarity_search(QUERY, k=10, filter=where)
    assert filtered and {doc.id for doc in filtered} <= selected
    assert filtered[0].metadata == docs[filtered[0].id].metadata  # the user's metadata, as given
    plain = head_store.similarity_search(QUERY, k=4)
    diverse = head_store.max_marginal_relevance_search(QUERY, k=4, fetch_k=20, lambda_mult=0.3)
    assert len({d.id for d in diverse}) == 4 and diverse[0].id == plain[0].id
    assert [d.id for d in diverse] != [d.id for d in plain]
    wanted = [plain[1].id, "no-such-id", plain[0].id]
    assert head_store.get_by_ids(wanted) == [docs[plain[1].id], docs[plain[0].id]]


def test_bad_input_is_refused_naming_it_and_nothing_is_written(tmp_path: Path) -> None:
    store = TesseraVectorStore(tmp_path / "store")
    store.add_texts(["flow over a flat plate"], ids=["a"])
    manifest = (store.path / "manifest.json").read_bytes()
    with pytest.raises(TesseraError) as nested:
        store.add_texts(["x", "y"], [{"page": 1}, {"pages": {"first": 1}}])
    assert nested.value.field == "texts[1].metadata.pages"
    with pytest.raises(TesseraError) as counted:
        store.add_texts(["x", "y"], ids=["b"])
    assert counted.value.field == "ids"
    with pytest.raises(TesseraError, match="'b' is given twice"):
        store.add_texts(["x", "y"], ids=["b", "b"])
    with pytest.raises(TesseraError, match="TesseraEmbeddings"):
        TesseraVectorStore.from_texts(["x"], DeterministicFakeEmbedding(size=6), path=tmp_path / "other")
    with pytest.raises(TesseraError, match="built with 'minilm'"):
        TesseraVectorStore(store.path, encoder="bm25")
    for call, field in ((lambda: store.add_texts("hello"), "texts"), (lambda: store.delete("ab"), "ids")):
        with pytest.raises(
            TesseraError, match="not a str; for one, give"
        ) as one:  # not five letters, not a and b
            call()
        assert one.value.field == field
    assert (store.path / "manifest.json").read_bytes() == manifest
    assert not (tmp_path / "other").exists()


def test_a_bm25_store_and_the_store_emptied_then_built_again(tmp_path: Path) -> None:
    store = TesseraVectorStore(tmp_path / "lexical", encoder="bm25")
    ids = store.add_texts(
        ["supersonic flow past a cone", "heat transfer in laminar flow", "buckling of thin shells"],
        [{"topic": "flow"}, {"topic": "heat"}, {"topic": "structures"}],
    )
    assert [d.id for d in store.similarity_search("shells buckling", k=1)] == [ids[2]]
    assert [d.id for d in store.similarity_search("flow", k=3, filter={"topic": "heat"})] == [ids[1]]
    assert store.embeddings is None
    with pytest.raises(TesseraError, match="no fixed range"):
        store.similarity_search_with_relevance_scores("flow", k=1)
    reopened = TesseraVectorStore(store.path)
    assert reopened.store.encoder_spec.startswith("bm25:") and len(reopened.get_by_ids(ids)) == 3
    assert TesseraVectorStore(store.path, encoder="bm25").store.index is not None  # the same spec, canonical
    store.delete(ids)
    assert not store.path.exists() and store.similarity_search("flow") == []
    store.add_texts(["a cone in supersonic flow"], ids=["again"])
    assert [d.id for d in store.similarity_search("cone", k=5)] == ["again"]
    with pytest.raises(TesseraError, match="needs one vector a document, not a lucene index"):
        store.similarity_search_by_vector([0.1] * 384, k=2)


def test_an_empty_text_is_named_by_its_id_not_by_a_temporary_file(tmp_path: Path) -> None:
    """The warning named `.store.build-XXXX.jsonl:2`, a file gone once the texts were added, which
    the doc store kept as the documents' source and the manifest as the corpus."""
    store = TesseraVectorStore(tmp_path / "store", encoder="bm25")
    with pytest.warns(
        UserWarning,
        match=r"^field 'text': 1 document has neither title nor text: indexed empty \(first: blank\)$",
    ):
        store.add_texts(["supersonic flow past a cone", " "], ids=["cone", "blank"])
    with pytest.warns(UserWarning, match=r"\(first: later, gap\)$"):
        store.add_texts(["", "", "buckling of thin shells"], ids=["later", "gap", "shells"])
    assert Manifest.read(store.path).corpus == "documents added through a vector store"
    sources = Index.load(store.path).docstore.db.execute("SELECT DISTINCT source FROM docs").fetchall()
    assert sources == [(None,)]
    assert not list(tmp_path.glob("*.jsonl"))  # no temporary corpus left beside it


def test_two_store_objects_of_one_directory_never_undo_each_others_adds(tmp_path: Path) -> None:
    """B, opened before A's add, replaced every document it knew of by a rebuild: A's was lost."""
    first = TesseraVectorStore(tmp_path / "shared", encoder="bm25")
    first.add_texts(["alpha wing", "beta wing"], ids=["a", "b"])
    second = TesseraVectorStore(tmp_path / "shared")
    first.add_texts(["gamma wing"], ids=["g"])
    second.add_texts(["alpha wing v2", "beta wing v2"], ids=["a", "b"])  # replaces a and b only
    stored = TesseraVectorStore(tmp_path / "shared").get_by_ids(["a", "b", "g"])
    assert [(d.id, d.page_content) for d in stored] == [
        ("a", "alpha wing v2"),
        ("b", "beta wing v2"),
        ("g", "gamma wing"),
    ]
    first.add_texts(
        ["alpha wing v3"], ids=["a"]
    )  # first saw only its own update: it starts from the current one
    assert [d.text for d in second.store.get(["a"])] == ["alpha wing v2"]  # reads see a refresh
    second.store.refresh()
    assert [d.page_content for d in second.get_by_ids(["a", "g"])] == ["alpha wing v3", "gamma wing"]


def test_replacing_every_document_rebuilds_the_same_kind_of_index(tmp_path: Path) -> None:
    corpus = tmp_path / "three.jsonl"
    texts = ["supersonic flow past a cone", "heat transfer in laminar flow", "buckling of thin shells"]
    corpus.write_text("".join(json.dumps({"_id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    build_index(corpus, tmp_path / "hnsw", factory="HNSW32", chunk="16:4", show_progress=False)
    store = TesseraVectorStore(tmp_path / "hnsw")  # the store's own default factory is Flat
    store.add_texts(
        ["a cone at mach three", "laminar heating", "thin shell buckling"], ids=["d0", "d1", "d2"]
    )
    manifest = Manifest.read(tmp_path / "hnsw", verify=False)
    assert (manifest.factory, manifest.chunking["tokens"], manifest.chunking["overlap"]) == ("HNSW32", 16, 4)
    assert [d.id for d in store.similarity_search("shell buckling", k=1)] == ["d2"]


def test_two_processes_creating_one_store_both_add(tmp_path: Path) -> None:
    """The second process's first add found the directory the first had just built: "already
    exists", and its texts were not added."""
    script = (
        "import sys; from tessera.integrations.langchain import TesseraVectorStore\n"
        "store = TesseraVectorStore(sys.argv[1], encoder='bm25')\n"
        "name = sys.argv[2]\n"
        "store.add_texts([f'text {name} {i}' for i in range(3)], ids=[f'{name}{i}' for i in range(3)])\n"
    )
    path = tmp_path / "race"
    runs = [
        subprocess.Popen([sys.executable, "-c", script, str(path), name], stderr=subprocess.PIPE, text=True)
        for name in ("A", "B")
    ]
    assert [run.wait(timeout=300) for run in runs] == [0, 0], [run.stderr.read() for run in runs]
    assert sorted(TesseraVectorStore(path).store.ids()) == ["A0", "A1", "A2", "B0", "B1", "B2"]


def test_a_store_path_that_is_not_an_index_and_bad_searches_are_refused(
    head_store: TesseraVectorStore, tmp_path: Path
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("mine")
    for path, said in [
        (afile, "is a file: a vector store's directory holds one index"),
        (tmp_path / "folder", "is a folder that is not a Tessera index"),
        (afile / "store", "afile is a file, not a folder"),
    ]:
        with pytest.raises(TesseraError, match=said):
            TesseraVectorStore(path)
    assert (tmp_path / "folder" / "notes.txt").read_text() == "mine"
    (tmp_path / "empty").mkdir()  # an empty folder made for the store is where it builds
    TesseraVectorStore(tmp_path / "empty", encoder="bm25").add_texts(["a cone in supersonic flow"], ids=["c"])
    assert [d.id for d in TesseraVectorStore(tmp_path / "empty").similarity_search("cone", k=1)] == ["c"]
    for call in (
        lambda: head_store.similarity_search("flow", k=0),
        lambda: head_store.max_marginal_relevance_search("flow", k=0),  # was []
        lambda: head_store.similarity_search("flow", k="2"),  # was a TypeError
    ):
        with pytest.raises(TesseraError, match="k"):
            call()
    with pytest.raises(TesseraError, match="NaN or infinite"):  # was []
        head_store.similarity_search_by_vector([float("nan")] * 384, k=2)
    with pytest.raises(TesseraError, match="vectors of 384 numbers are searched"):
        head_store.similarity_search_by_vector([0.1] * 3, k=2)
