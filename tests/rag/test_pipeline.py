"""`tessera.rag.prepare` / `answer` over a real Cranfield index."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tessera.errors import TesseraError, TesseraWarning
from tessera.indexing.builder import build_index
from tessera.rag import answer, prepare
from tessera.rag.passages import passage_blocks
from tessera.rag.prompt import build_messages
from tessera.rag.tokens import token_counter
from tessera.retrieval.fusion import hybrid_search
from tessera.retrieval.index import Index

QUESTION = (
    "what similarity laws must be obeyed when constructing aeroelastic models of heated high speed aircraft"
)


@pytest.fixture(scope="module")
def index(cranfield_dense) -> Index:
    return Index.load(cranfield_dense)


def test_plain_prompt_holds_the_top_k_passages_in_rank_order(index):
    prompt = prepare(index, QUESTION, k=5)
    hits = index.search(QUESTION, k=5, with_text=True)
    assert [s["doc_id"] for s in prompt.sources] == [h.doc_id for h in hits]
    assert [b.sources for b in prompt.blocks] == [(h.doc_id,) for h in hits]
    assert prompt.messages == build_messages(QUESTION, passage_blocks(prompt.passages))
    assert prompt.prompt_tokens == prompt.plain_tokens == token_counter().count_messages(prompt.messages)


def test_compression_cuts_prompt_tokens_and_order_moves_blocks(index):
    crag = prepare(index, QUESTION, k=10, compress="crag")
    assert crag.prompt_tokens < 0.65 * crag.plain_tokens
    reverse = prepare(index, QUESTION, k=10, compress="truncation", budget=300, order="reverse")
    best = reverse.passages[0].doc_id
    assert f"(doc {best})" in reverse.messages[1]["content"].split("\n\n")[-2]  # best block last
    assert reverse.blocks[-1].sources == (best,)  # the blocks as the prompt numbers them ([n])
    sandwich = prepare(index, QUESTION, k=5, order="sandwich")
    ranked = [p.doc_id for p in sandwich.passages]
    assert [b.sources[0] for b in sandwich.blocks] == [ranked[i] for i in (0, 2, 4, 3, 1)]


def test_compressors_write_flat_text_and_the_plain_prompt_keeps_the_layout(index):
    """Cranfield's line breaks and indents are about a tenth of a plain prompt's tokens, which every
    compressor's output collapses: truncation kept them, so at the same tokens it held fewer
    words than the compressor it is the baseline of; the plain prompt keeps them (code, tables)."""
    plain = prepare(index, QUESTION, k=3)
    assert "\n" in plain.messages[-1]["content"].split("Question:")[0].split("(doc ", 2)[1]
    kept = prepare(
        index, QUESTION, k=3, compress="tcra-semantic", budget=10**8, compressor_options={"ratio": 1.0}
    )
    cut = prepare(index, QUESTION, k=3, compress="truncation", budget=10**8)
    assert (
        [b.text for b in kept.blocks] == [b.text for b in cut.blocks] == [p.flat_text for p in kept.passages]
    )
    assert kept.prompt_tokens == cut.prompt_tokens < 0.95 * kept.plain_tokens


def test_each_source_names_the_block_the_prompt_cites_it_by(index):
    """The sources were numbered by rank, the prompt's blocks by `order` (and a CRAG cluster is
    one block): an answer's [1] named another document than the source marked [1]."""
    for prompt in (
        prepare(index, QUESTION, k=5, order="reverse"),
        prepare(index, QUESTION, k=8, compress="crag", order="sandwich"),
        prepare(index, QUESTION, k=8, compress="truncation", budget=200),
    ):
        cites = [s["cite"] for s in prompt.sources]
        for source in prompt.sources:
            if source["cite"] is not None:
                assert source["doc_id"] in prompt.blocks[source["cite"] - 1].sources
        held = [doc for block in prompt.blocks for doc in block.sources]
        assert sorted(s["doc_id"] for s in prompt.sources if s["cite"] is not None) == sorted(held)
    assert cites[0] == 1 and None in cites  # truncation: the best first, the last cut away
    reverse = prepare(index, QUESTION, k=5, order="reverse")
    assert [s["cite"] for s in reverse.sources] == [5, 4, 3, 2, 1]


def test_hybrid_retrieval_feeds_the_fused_hits_with_their_text(index, cranfield_bm25):
    bm25 = Index.load(cranfield_bm25)
    for fusion, weights in [("rrf", None), ("wsum", (0.4, 0.6))]:
        prompt = prepare(index, QUESTION, k=10, fuse=[bm25], fusion=fusion, weights=weights, depth=50)
        fused = hybrid_search([index, bm25], [QUESTION], 10, 50, fusion=fusion, weights=weights)[0]
        assert [(p.doc_id, p.rank) for p in prompt.passages] == [(h.doc_id, h.rank) for h in fused]
        stored = index.docstore.get([h.doc_id for h in fused])
        assert [p.text for p in prompt.passages] == [stored[h.doc_id].text for h in fused]
    alone = {p.doc_id for p in prepare(index, QUESTION, k=10).passages}
    assert alone != {p.doc_id for p in prompt.passages}  # BM25 changed what the prompt holds


@pytest.fixture(scope="module")
def long_documents(cranfield_docs, tmp_path_factory) -> Path:
    """Six long documents (25 Cranfield abstracts each, metadata `part`), in passages of 64 tokens."""
    folder = tmp_path_factory.mktemp("long")
    docs = list(cranfield_docs.values())[:150]
    with (folder / "corpus.jsonl").open("w") as handle:
        for n in range(6):
            text = "\n\n".join(d["text"] for d in docs[25 * n : 25 * n + 25])
            record = {"_id": f"long-{n}", "title": "", "text": text, "metadata": {"part": n}}
            handle.write(json.dumps(record) + "\n")
    return build_index(folder / "corpus.jsonl", folder / "chunked", chunk="64:8", show_progress=False)


def passages(hits) -> list[tuple[str, tuple[int, int], str]]:
    return [(h.doc_id, h.offsets, h.passage) for h in hits]


def test_a_chunked_index_puts_its_best_passages_in_the_prompt_not_whole_documents(long_documents):
    index = Index.load(long_documents)
    prompt = prepare(index, QUESTION, k=5)  # six documents hold five places: one passage each
    found = index.search(QUESTION, k=5, with_text=True)
    assert [(p.doc_id, p.offsets, p.text) for p in prompt.passages] == passages(found)
    assert prompt.plain_tokens < 800  # five passages of 64 tokens, not five documents of ~6,000
    assert prompt.sources[0]["offsets"] == list(found[0].offsets)
    twelve = prepare(index, QUESTION, k=12)  # twelve places, six documents: two passages each
    found = index.search(QUESTION, k=12, with_text=True, per_document=2)
    assert [(p.doc_id, p.offsets, p.text) for p in twelve.passages] == passages(found)
    for order in ("reverse", "sandwich"):  # two passages of one document were cited the other's way round
        placed = prepare(index, QUESTION, k=12, order=order)
        for passage, source in zip(placed.passages, placed.sources, strict=True):
            assert placed.blocks[source["cite"] - 1].text == passage.full_text
    one_report = prepare(index, QUESTION, k=5, filter={"part": 4})  # one document: its five best passages
    found = index.search(QUESTION, k=5, with_text=True, filter={"part": 4}, per_document=5)
    assert [(p.doc_id, p.offsets, p.text) for p in one_report.passages] == passages(found)
    assert {p.doc_id for p in one_report.passages} == {"long-4"} and len(one_report.passages) == 5
    chosen = prepare(index, QUESTION, k=5, per_document=5)
    assert [(p.doc_id, p.offsets) for p in chosen.passages] == [
        (h.doc_id, h.offsets) for h in index.search(QUESTION, k=5, per_document=5)
    ]
    assert len({p.doc_id for p in chosen.passages}) < 5  # several passages of one long document
    copy = Index.load(shutil.copytree(index.root, index.root.with_name("copy")))  # fused with itself: refused
    with pytest.raises(TesseraError, match="fused indexes rank documents"):
        prepare(index, QUESTION, k=5, fuse=[copy], per_document=2)
    fused = prepare(index, QUESTION, k=3, fuse=[copy])  # fusion: each document's best passage
    assert len({p.doc_id for p in fused.passages}) == 3 and all(p.offsets for p in fused.passages)


def test_passages_of_a_pdf_cite_their_page(cranfield_docs, tmp_path):
    from tests.data.test_files import wrapped, write_pdf

    texts = [d["text"] for d in list(cranfield_docs.values())[:24]]
    pages = [wrapped(" ".join(texts[n : n + 4])) for n in range(0, 24, 4)]  # six pages
    pdf = write_pdf(tmp_path / "report.pdf", pages, "Wing and slipstream studies")
    index = Index.load(build_index(pdf, tmp_path / "idx", chunk="64:8", show_progress=False))
    prompt = prepare(index, QUESTION, k=4)  # one document: its four best passages
    document = index.document("report").text
    assert [s["page"] for s in prompt.sources] == [
        document.count("\f", 0, p.offsets[0]) + 1 for p in prompt.passages
    ]
    assert all(1 <= s["page"] <= 6 for s in prompt.sources) and len(prompt.sources) == 4


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"k": 0}, "k must be at least 1"),
        ({"question": "  "}, "question is empty"),
        ({"budget": 0}, "budget must be at least 1"),
        ({"budget": 5}, "a budget is a compressor's; 'none' keeps every passage"),
        ({"compress": "gzip"}, "unknown compressor"),
        ({"order": "middle"}, "unknown order"),
        ({"weights": (0.5, 0.5)}, "need indexes to fuse"),
        ({"fusion": "wsum"}, "need indexes to fuse"),
        ({"fuse": ["any"], "fusion": "max"}, "unknown fusion 'max'"),
        ({"fuse": ["any"], "fusion": "wsum", "weights": (1.0,)}, "1 weights for 2 runs"),
    ],
)
def test_bad_arguments_are_refused(index, options, message):
    arguments = {"question": QUESTION, **options}
    with pytest.raises(TesseraError, match=message):
        prepare(index, **arguments)


def test_a_filter_that_keeps_nothing_says_the_prompt_has_no_context(index):
    with pytest.warns(TesseraWarning, match=r"no passage was retrieved \(no document matches the filter\)"):
        prompt = prepare(index, QUESTION, k=3, filter={"author": "nobody of that name"})
    assert prompt.passages == []


def test_python_callers_arguments(index, cranfield_bm25):
    """One path where a list of indexes is due is that index; an unknown option or a question
    that is not text is named, not a TypeError from inside `prepare`."""
    one = prepare(index, QUESTION, k=5, fuse=str(cranfield_bm25))
    assert [p.doc_id for p in one.passages] == [
        p.doc_id for p in prepare(index, QUESTION, k=5, fuse=[cranfield_bm25]).passages
    ]
    with pytest.raises(TypeError, match="unknown option 'topk'"):
        answer(index, QUESTION, generator=None, topk=3)
    with pytest.raises(TypeError, match=r"a compressor's own go in compressor_options=\{'ratio': ...\}"):
        answer(index, QUESTION, generator=None, compress="crag", ratio=0.4)
    for budget in (1.5, "10"):  # "must be at least 1 token, got 1.5"
        with pytest.raises(TesseraError, match="field 'budget': must be a whole number"):
            answer(index, QUESTION, generator=None, compress="truncation", budget=budget)
    with pytest.raises(TesseraError, match="must be text, got NoneType") as info:
        answer(index, None, generator=None)
    assert info.value.field == "question"


def test_an_answer_of_no_tokens_is_refused_before_retrieval(index):
    for cap in (0, -3):
        with pytest.raises(TesseraError, match=f"must be at least 1 token, got {cap}") as info:
            answer(index, QUESTION, generator=None, max_new_tokens=cap)
        assert info.value.field == "max_new_tokens"


def test_local_generator_answers_from_compressed_context(index):
    result = answer(index, QUESTION, k=5, compress="crag", generator="local", max_new_tokens=48)
    assert result.answer and len(result.answer.split()) >= 3
    assert result.prompt.timings["generate_s"] > 0


def test_an_empty_answer_is_said(index):
    class Silent:
        name = "silent"
        tokens = token_counter()

        def generate(self, messages, max_new_tokens=256):
            return " "

    with pytest.warns(TesseraWarning, match="silent answered nothing"):
        assert answer(index, QUESTION, k=1, generator=Silent()).answer == " "
