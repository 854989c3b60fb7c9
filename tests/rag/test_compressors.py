"""Compressors on real Cranfield passages: budgets, coverage, floors, numbers kept."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tessera.data.corpus import open_corpus
from tessera.data.sentences import split_sentences
from tessera.errors import TesseraError
from tessera.rag.compressors import make_compressor
from tessera.rag.compressors.crag import CragCompressor
from tessera.rag.compressors.tcra_semantic import TcraSemanticCompressor, is_protected, is_shouting
from tessera.rag.passages import context_text

# Judged-relevant documents of two unrelated Cranfield queries: heat conduction in composite
# slabs (query 3) and aeroelastic models of heated aircraft (query 1).
SLABS = ["5", "6", "90", "91"]
AEROELASTIC = ["12", "13", "14", "15", "51"]
QUESTION = "what problems of heat conduction in composite slabs have been solved so far ."


@pytest.fixture(scope="module")
def passages(passages_of):
    return passages_of([SLABS[0], AEROELASTIC[0], SLABS[1], AEROELASTIC[1], *SLABS[2:], *AEROELASTIC[2:]])


def tokens_of(rag_tools, blocks) -> int:
    return sum(rag_tools.tokens.count(block.text) for block in blocks)


def test_truncation_keeps_the_best_passages_first_up_to_the_budget(rag_tools, passages):
    truncation = make_compressor("truncation", rag_tools)
    first_two = sum(rag_tools.tokens.count(p.flat_text) for p in passages[:2])
    blocks = truncation.compress(QUESTION, passages, first_two + 10)
    assert [b.sources for b in blocks] == [(p.doc_id,) for p in passages[:3]]
    assert [b.text for b in blocks[:2]] == [p.flat_text for p in passages[:2]]  # as compressors write
    assert passages[2].flat_text.startswith(blocks[2].text) and rag_tools.tokens.count(blocks[2].text) == 10
    assert truncation.compress(QUESTION, passages, None) == truncation.compress(QUESTION, passages, 10**6)


def test_crag_clusters_cover_every_passage_exactly_once(rag_tools, passages):
    crag = CragCompressor(rag_tools)
    groups = crag.clusters(passages)
    assert sorted(i for group in groups for i in group) == list(range(len(passages)))
    blocks = crag.compress(QUESTION, passages, None)
    sources = [doc for block in blocks for doc in block.sources]
    assert sorted(sources) == sorted(p.doc_id for p in passages)
    assert blocks[0].sources[0] == passages[0].doc_id  # the cluster of the best passage comes first


def test_crag_separates_two_topics(rag_tools, passages):
    crag = CragCompressor(rag_tools)
    groups = [{passages[i].doc_id for i in group} for group in crag.clusters(passages)]
    assert set(SLABS) in groups and crag.last_silhouette > 0


def test_crag_summaries_stay_within_the_budget_and_quote_the_passages(rag_tools, passages):
    plain = sum(rag_tools.tokens.count(p.flat_text) for p in passages)
    for budget in (plain // 2, plain // 4):
        blocks = CragCompressor(rag_tools).compress(QUESTION, passages, budget)
        assert tokens_of(rag_tools, blocks) <= budget
        sentences = {s for p in passages for s in split_sentences(p.full_text)}
        for block in blocks:
            assert all(s in sentences for s in split_sentences(block.text))


def test_balanced_fill_keeps_a_share_of_every_passage(rag_tools, passages):
    """One cluster of all nine passages at half their tokens: with balanced shares every
    passage keeps at least its share less one sentence; filling by score alone starves some."""
    from tessera.rag.compressors.summaries import extractive_summary

    question_vector = rag_tools.embed_queries([QUESTION])[0]
    lengths = [rag_tools.tokens.count(p.flat_text) for p in passages]
    budget = sum(lengths) // 2
    kept = {}
    for fill in ("balanced", "score"):
        summary = set(
            split_sentences(extractive_summary(rag_tools, question_vector, passages, budget, fill=fill))
        )
        kept[fill] = [
            sum(rag_tools.tokens.count(s) + 1 for s in split_sentences(p.full_text) if s in summary)
            for p in passages
        ]
        assert sum(kept[fill]) <= budget
    for passage, share, got in zip(passages, lengths, kept["balanced"], strict=True):
        longest = max(rag_tools.tokens.count(s) + 1 for s in split_sentences(passage.full_text))
        assert got >= share // 2 - longest, passage.doc_id
    assert min(k / n for k, n in zip(kept["score"], lengths, strict=True)) < min(
        k / n for k, n in zip(kept["balanced"], lengths, strict=True)
    )
    with pytest.raises(TesseraError, match="unknown fill 'even'"):
        CragCompressor(rag_tools, fill="even")


def test_coverage_fill_keeps_more_of_each_passages_words(rag_tools, passages):
    """At half the tokens, the coverage selector keeps every passage's best sentence and more of
    each passage's distinct content words than filling by score, for the worst-kept passage and
    on average."""
    from sklearn.feature_extraction.text import CountVectorizer

    from tessera.rag.compressors.summaries import extractive_summary

    question_vector = rag_tools.embed_queries([QUESTION])[0]
    budget = sum(rag_tools.tokens.count(p.flat_text) for p in passages) // 2
    analyze = CountVectorizer(stop_words="english").build_analyzer()
    share = {}
    for fill in ("coverage", "score"):
        summary = extractive_summary(rag_tools, question_vector, passages, budget, fill=fill)
        assert rag_tools.tokens.count(summary) <= budget
        sentences = set(split_sentences(summary))
        assert all(any(s in sentences for s in split_sentences(p.full_text)) for p in passages)
        words = set(analyze(summary))
        share[fill] = [
            len(words & set(analyze(p.full_text))) / len(set(analyze(p.full_text))) for p in passages
        ]
    assert min(share["coverage"]) > min(share["score"])
    assert np.mean(share["coverage"]) > np.mean(share["score"])
    blocks = make_compressor("tcra-summary", rag_tools, fill="score").compress(QUESTION, passages, budget)
    assert tokens_of(rag_tools, blocks) <= budget
    with pytest.raises(TesseraError, match="unknown fill 'even'"):
        make_compressor("tcra-summary", rag_tools, fill="even")


def test_tcra_summary_summarises_each_passage_on_its_own(rag_tools, passages):
    plain = sum(rag_tools.tokens.count(p.flat_text) for p in passages)
    blocks = make_compressor("tcra-summary", rag_tools).compress(QUESTION, passages, None)
    assert [b.sources for b in blocks] == [(p.doc_id,) for p in passages]
    assert tokens_of(rag_tools, blocks) <= plain / 2 + len(passages)
    for block, passage in zip(blocks, passages, strict=True):
        assert block.text and set(split_sentences(block.text)) <= set(split_sentences(passage.full_text))


def test_summarizer_generator_needs_a_generator(rag_tools):
    with pytest.raises(TesseraError, match="needs a generator"):
        make_compressor("crag", rag_tools, summarizer="generator")
    with pytest.raises(TesseraError, match="unknown compressor 'zip'"):
        make_compressor("zip", rag_tools)


def test_compressor_options_are_checked_against_the_constructor(rag_tools):
    """A CLI's `--option` arrives as numbers or words; what the compressor cannot take is named."""
    assert make_compressor("crag", rag_tools, ratio=0.4, max_clusters=4).max_clusters == 4
    assert isinstance(make_compressor("crag", rag_tools, max_clusters=4.0).max_clusters, int)
    for name, options, message in [
        ("crag", {"nope": 1}, "compressor 'crag' has no option 'nope' (it takes ratio, max_clusters"),
        ("truncation", {"ratio": 0.5}, "compressor 'truncation' has no option 'ratio' (it takes none)"),
        ("crag", {"max_clusters": 2.5}, "option 'max_clusters' of 'crag' takes a whole number, got 2.5"),
        ("tcra-semantic", {"floor": "abc"}, "option 'floor' of 'tcra-semantic' takes a number, got 'abc'"),
        ("tcra-summary", {"summarizer": 3}, "option 'summarizer' of 'tcra-summary' takes a word, got 3"),
        ("none", {"ratio": 0.5}, "compressor 'none' takes no option"),
        # ranges: a ratio of 0 left a few characters, a cluster count of 0 a faiss assertion
        ("crag", {"clusters": 0}, "option 'clusters' must be at least 1, got 0"),
        ("crag", {"max_clusters": -2}, "option 'max_clusters' must be at least 1, got -2"),
        ("crag", {"ratio": -1}, "option 'ratio' must be above 0 and at most 1, got -1"),
        ("tcra-summary", {"ratio": 0}, "option 'ratio' must be above 0 and at most 1, got 0"),
        ("tcra-semantic", {"ratio": 1.5}, "option 'ratio' must be above 0 and at most 1, got 1.5"),
        ("tcra-semantic", {"floor": 5}, "option 'floor' must be a cosine between 0 and 1, got 5"),
        ("tcra-semantic", {"step": 1}, "option 'step' must be above 0 and below 1, got 1"),
        ("tcra-semantic", {"max_rounds": 0}, "option 'max_rounds' must be at least 1, got 0"),
    ]:
        with pytest.raises(TesseraError, match=re.escape(message)) as info:
            make_compressor(name, rag_tools, **options)
        assert info.value.field == "option"


def test_protected_words_are_numbers_and_ids():
    assert all(map(is_protected, ["2.5", "1954", "NACA", "(NACA)", "x-15", "M=3"]))
    assert not any(map(is_protected, ["the", "Wing", "layer", "A"]))
    # In a text written in capitals, capitals are no id: numbers only.
    assert [is_protected(w, shouting=True) for w in ["NACA", "1954", "X-15", "LIBRARY"]] == [
        False,
        True,
        True,
        False,
    ]
    assert is_shouting(["THE", "NACA", "WING", "IN", "A", "SLIPSTREAM"]) and not is_shouting(
        ["the", "NACA", "wing", "in", "it"]
    )


def test_semantic_compression_deletes_words_of_a_text_in_capitals(rag_tools, data_dir):
    """LISA's abstracts are all capitals: every word looked like an id, and nothing was deleted."""
    text = next(d.text for d in open_corpus("glasgow/lisa") if 60 < len(d.text.split()) < 150)
    target = int(rag_tools.tokens.count(text) * 0.75)
    compressed = TcraSemanticCompressor(rag_tools).compress_text(text, target)
    # At the target, not far below it: a word of a text in capitals is several tokens.
    assert target * 0.95 <= rag_tools.tokens.count(compressed) <= target
    assert _is_subsequence(compressed.split(), text.split())
    numbers = [w for w in text.split() if is_protected(w, shouting=True)]
    assert [w for w in compressed.split() if is_protected(w, shouting=True)] == numbers


@pytest.fixture(scope="module")
def numeric_passage(cranfield_docs, passages_of):
    """The first short Cranfield document with at least three numbers in it."""
    doc_id = next(
        i
        for i, d in cranfield_docs.items()
        if sum(map(is_protected, d["text"].split())) >= 3 and len(d["text"].split()) < 120
    )
    return passages_of([doc_id])[0]


def test_semantic_compression_holds_its_floor_and_keeps_numbers(rag_tools, numeric_passage):
    text = numeric_passage.full_text
    original = rag_tools.embed_docs([text])[0]
    for floor in (0.9,):
        compressed = TcraSemanticCompressor(rag_tools, floor=floor, ratio=None).compress_text(text)
        assert rag_tools.tokens.count(compressed) < rag_tools.tokens.count(text)
        assert float(rag_tools.embed_docs([compressed])[0] @ original) >= floor
        numbers = [w for w in text.split() if is_protected(w)]
        assert [w for w in compressed.split() if is_protected(w)] == numbers
        assert _is_subsequence(compressed.split(), text.split())


def test_semantic_compression_never_exceeds_a_reachable_budget(rag_tools, passages):
    plain = [rag_tools.tokens.count(p.flat_text) for p in passages[:3]]
    budget = int(sum(plain) * 0.8)
    semantic = TcraSemanticCompressor(rag_tools, floor=0.5)
    blocks = semantic.compress(QUESTION, passages[:3], budget)
    assert tokens_of(rag_tools, blocks) <= budget
    assert tokens_of(rag_tools, blocks) >= budget * 0.85  # it stops at the budget, not far below it
    for block, passage in zip(blocks, passages[:3], strict=True):
        similarity = rag_tools.embed_docs([block.text, passage.full_text])
        assert float(np.dot(*similarity)) >= 0.5


def _is_subsequence(short: list[str], long: list[str]) -> bool:
    words = iter(long)
    return all(any(w == x for x in words) for w in short)


def test_context_text_joins_blocks(rag_tools, passages):
    blocks = make_compressor("truncation", rag_tools).compress(QUESTION, passages[:2], None)
    assert context_text(blocks) == passages[0].flat_text + "\n" + passages[1].flat_text
    assert re.search(r"\S", context_text(blocks))
