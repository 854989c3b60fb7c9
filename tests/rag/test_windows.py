"""Passages retrieved whole (BM25, or a dense index without `--chunk`) that would overflow the
generator's context enter as their windows that best match the question, cut to one level
(water-filling); passages that fit enter whole."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tessera.indexing.builder import build_index
from tessera.rag import prepare
from tessera.rag.pipeline import compression_tools
from tessera.rag.windows import context_budget, water_level
from tessera.retrieval.index import Index

QUESTION = "what similarity laws must be obeyed when constructing aeroelastic models of heated aircraft"


RELEVANT = ["12", "51", "184", "29"]  # Cranfield judges these relevant to QUESTION (its query 1)


@pytest.fixture(scope="module")
def long_bm25(cranfield_docs, tmp_path_factory) -> tuple[Path, dict[str, tuple[int, int]]]:
    """Four long documents of 41 Cranfield abstracts (about 8,000 tokens), each with one abstract
    judged relevant to QUESTION in its middle; indexed whole by BM25. Returns the index and where
    each relevant abstract lies in its long document."""
    folder = tmp_path_factory.mktemp("long-bm25")
    fillers = [d["text"] for i, d in cranfield_docs.items() if 300 <= int(i) < 500]
    places = {}
    with (folder / "corpus.jsonl").open("w") as handle:
        for n, relevant in enumerate(RELEVANT):
            before = "\n\n".join(fillers[40 * n : 40 * n + 20]) + "\n\n"
            after = "\n\n" + "\n\n".join(fillers[40 * n + 20 : 40 * n + 40])
            places[f"long-{n}"] = (len(before), len(before) + len(cranfield_docs[relevant]["text"]))
            text = before + cranfield_docs[relevant]["text"] + after
            handle.write(json.dumps({"_id": f"long-{n}", "title": "", "text": text}) + "\n")
    return build_index(folder / "corpus.jsonl", folder / "bm25", "bm25", show_progress=False), places


def test_long_documents_enter_as_their_best_window(long_bm25, cranfield_docs) -> None:
    root, places = long_bm25
    index = Index.load(root)
    tools = compression_tools(index, None)
    assert context_budget(tools) == 8192 - 1024
    share = context_budget(tools) // 4  # four long documents: one level for all
    prompt = prepare(index, QUESTION, k=4)
    documents = {h.doc_id: h.text for h in index.search(QUESTION, 4, with_text=True)}
    assert sorted(p.doc_id for p in prompt.passages) == sorted(places)
    for passage in prompt.passages:
        text = documents[passage.doc_id]
        assert tools.tokens.count(text) > 2 * share  # long: the whole would not fit
        start, end = passage.offsets
        assert passage.text == text[start:end] and 0.9 * share <= tools.tokens.count(passage.text) <= share
    assert prompt.sources[0]["offsets"] == list(prompt.passages[0].offsets)
    assert prompt.plain_tokens < 4 * share + 400  # the four windows, instructions and question
    for n, relevant in enumerate(RELEVANT):  # asked in an abstract's own words, its window is chosen
        asked = " ".join(cranfield_docs[relevant]["title"].split())
        window = next(p for p in prepare(index, asked, k=4).passages if p.doc_id == f"long-{n}")
        first, last = places[f"long-{n}"]
        start, end = window.offsets
        assert min(end, last) - max(start, first) >= (last - first) / 2, (relevant, asked)


def test_the_water_level_cuts_only_the_longest() -> None:
    assert water_level([100, 200, 300], 600) is None  # all fit
    assert water_level([100, 200, 3000], 600) == 300  # the short ones whole, the long one the rest
    assert water_level([1000, 2000, 3000], 600) == 200  # all long: one level
    assert sum(min(n, water_level([50, 900, 900, 4000], 1000)) for n in [50, 900, 900, 4000]) <= 1000


def test_short_documents_enter_whole(cranfield_bm25: Path) -> None:
    index = Index.load(cranfield_bm25)
    prompt = prepare(index, QUESTION, k=10)
    stored = index.docstore.get(p.doc_id for p in prompt.passages)
    assert [p.text for p in prompt.passages] == [stored[p.doc_id].text for p in prompt.passages]
    assert all(p.offsets is None for p in prompt.passages)
    assert np.all([p.page is None for p in prompt.passages])


def test_many_passages_fit_the_window_with_their_headers(cranfield_bm25: Path) -> None:
    """Each block's `[n] (doc ID)` header and title count: 200 passages' headers took the prompt
    past the generator's 8,192 tokens, leaving the answer no room."""
    index = Index.load(cranfield_bm25)
    prompt = prepare(index, QUESTION, k=200)
    assert len(prompt.passages) == 200 and any(p.offsets is not None for p in prompt.passages)  # some cut
    assert prompt.prompt_tokens <= 8192 - 256
