"""Parsing `--system [NAME=]SPEC` strings: the three kinds, names, and the errors."""

from __future__ import annotations

import pytest

from tessera.errors import TesseraError
from tessera.eval.systems import parse_system, parse_systems
from tessera.retrieval.diversify import Mmr


def test_kinds_and_names() -> None:
    bm25 = parse_system("bm25:k1=1.2,b=0.75")  # '=' inside a spec is not NAME=
    assert (bm25.name, bm25.encoder, bm25.factory, bm25.kind) == (
        "bm25:k1=1.2,b=0.75",
        "bm25:k1=1.2,b=0.75",
        "Flat",
        "built",
    )
    assert bm25.slug == "bm25_k1_1.2_b_0.75"
    opq = parse_system("opq=minilm@OPQ48,PQ48")
    assert (opq.name, opq.encoder, opq.factory) == ("opq", "minilm", "OPQ48,PQ48")
    jpq = parse_system("jpq=index:/models/{collection}/jpq48")
    assert (jpq.kind, jpq.index_dir("cisi")) == ("prebuilt", "/models/cisi/jpq48")
    fused = parse_system("jpq48+bm25=rrf:bm25+jpq48")
    assert (fused.name, fused.fuse, fused.slug) == ("jpq48+bm25", ("bm25", "jpq48"), "jpq48_bm25")
    hybrid = parse_system("hybrid=rrf:bm25+minilm")
    assert (hybrid.kind, hybrid.fuse, hybrid.fusion, hybrid.weights) == (
        "fusion",
        ("bm25", "minilm"),
        "rrf",
        None,
    )
    scores = parse_system("scores=wsum:bm25+minilm")
    assert (scores.kind, scores.fuse, scores.fusion, scores.weights) == (
        "fusion",
        ("bm25", "minilm"),
        "wsum",
        None,
    )
    weighted = parse_system("wsum:bm25^0.3+minilm^0.7")
    assert (weighted.fuse, weighted.weights) == (("bm25", "minilm"), (0.3, 0.7))


def test_search_parameters_follow_a_question_mark() -> None:
    rocchio = parse_system("rocchio=bm25?prf=rocchio")
    assert (rocchio.encoder, rocchio.search_params, rocchio.spec) == (
        "bm25",
        {"prf": "rocchio"},
        "bm25?prf=rocchio",
    )
    ivf = parse_system("minilm@IVF16,Flat?nprobe=4&prf_depth=5")
    assert (ivf.name, ivf.factory, ivf.search_params) == (
        ivf.spec,
        "IVF16,Flat",
        {"nprobe": 4.0, "prf_depth": 5.0},
    )
    jpq = parse_system("jpq=index:/models/{collection}/jpq48?nprobe=8")
    assert (jpq.index_dir("cisi"), jpq.search_params) == ("/models/cisi/jpq48", {"nprobe": 8.0})
    assert parse_system("minilm").params == ()


def test_a_second_stage_follows_the_question_mark_too() -> None:
    ce = parse_system("ce=bm25?prf=rocchio&rerank=cross-encoder:org/model")
    assert (ce.search_params, ce.rerank, ce.rerank_depth) == (
        {"prf": "rocchio"},
        "cross-encoder:org/model",
        100,
    )
    fused = parse_system("upr=rrf:bm25+minilm?rerank=qlm&rerank_depth=20")
    assert (fused.fuse, fused.rerank, fused.rerank_depth, fused.spec) == (
        ("bm25", "minilm"),
        "qlm",
        20,
        "rrf:bm25+minilm?rerank=qlm&rerank_depth=20",
    )
    assert parse_system("index:/x/{collection}?rerank=minilm").rerank == "minilm"
    diverse = parse_system("d=bm25?k1=1.2&rerank=minilm&mmr=0.5&mmr_depth=30")
    assert (diverse.search_params, diverse.rerank, diverse.mmr) == ({"k1": 1.2}, "minilm", Mmr(0.5, 30))
    assert diverse.second_stage and not parse_system("bm25?k1=1.2").second_stage


@pytest.mark.parametrize(
    ("systems", "message"),
    [
        ([], "at least one"),
        (["a=bm25", "a=minilm"], "unique"),
        (["a+b=bm25", "a_b=minilm"], "file name"),
        (["jpq48"], "'jpq48' is no encoder"),
        (["bm25", "h=rrf:bm25+minilm"], "no --system defines"),
        (["bm25", "minilm", "h=rrf:bm25+minilm", "g=rrf:h+bm25"], "fuses the fusion"),
        (["h=rrf:bm25"], "at least two"),
        (["bm25", "minilm", "h=rrf:bm25^1+minilm^2"], "only wsum takes weights"),
        (["bm25", "minilm", "h=wsum:bm25^1+minilm"], "every part a weight or none"),
        (["bm25", "minilm", "h=wsum:bm25^x+minilm^1"], "weight 'x' is no number"),
        (["bm25", "minilm", "h=wsum:bm25^0+minilm^0"], "not all 0"),
        (["minilm@"], "SPEC@FACTORY"),
        (["bm25:k1=oops"], "k1"),
        (["bm25?nprobe=4"], "nprobe does not apply to a BM25 index"),
        (["minilm?prf=rm3"], "prf applies to BM25 indexes only"),
        (["bm25", "minilm", "h=rrf:bm25+minilm?k=1"], "a fusion takes no search parameters"),
        (["minilm?"], r"SPEC\?NAME=VALUE"),
        (["minilm?depth"], "expected NAME=VALUE"),
        (["minilm?rerank=bm25"], "bm25 cannot rerank"),
        (["minilm?rerank_depth=5"], "rerank_depth without rerank"),
        (["minilm?rerank=minilm&rerank_depth=0"], "rerank depth must be"),
        (["minilm?rerank=minilm&rerank_depth=2.5"], "rerank depth must be"),
        (["minilm?mmr_depth=5"], "'minilm\\?mmr_depth=5': an MMR depth needs an MMR weight"),
        (["minilm?mmr=2"], r"MMR weight must be a number in \[0, 1\]"),
        (["minilm?mmr=0.5&mmr_depth=0"], "MMR depth must be a whole number"),
        (["bm25?prf=rochio"], "prf must be rm3, rocchio or none, not 'rochio'"),  # before any build
        (["bm25?k1=abc"], "BM25 parameter 'k1'"),
        (["..=bm25"], "a system name needs more than dots"),  # a folder above the system's own
    ],
)
def test_errors(systems: list[str], message: str) -> None:
    with pytest.raises(TesseraError, match=message):
        parse_systems(systems)


def test_one_system_given_alone_is_one_system() -> None:
    """A str was parsed letter by letter ("'b' is no encoder")."""
    assert [system.name for system in parse_systems("bm25")] == ["bm25"]
    with pytest.raises(TesseraError, match="'a|b=bm25' is no encoder"):  # not NAME=SPEC: a `|`
        parse_system("a|b=bm25")  # would split the report's table rows
