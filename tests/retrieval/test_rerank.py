"""Second-stage reranking on Cranfield: each reranker reproduces its model's own scores, the
order follows them, the tail stays, and bad specs are refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tessera.errors import EncoderError
from tessera.retrieval.fusion import hybrid_search
from tessera.retrieval.index import Index
from tessera.retrieval.query_set import iter_search
from tessera.retrieval.rerank import load_reranker, rerank
from tessera.retrieval.rerank.base import hit_text
from tests.conftest import run_cli

QUERIES = [
    "what similarity laws must be obeyed when constructing aeroelastic models of heated high speed aircraft",
    "how can the effect of the boundary layer on wing pressure distributions be calculated",
]


def test_minilm_reranking_its_own_index_gives_its_scores(cranfield_dense: Path) -> None:
    index = Index.load(cranfield_dense)
    rows = index.batch_search(QUERIES, k=30, with_text=True)
    reranked = rerank(load_reranker("minilm"), QUERIES, rows, depth=30)
    for first, again in zip(rows, reranked, strict=True):
        assert [h.doc_id for h in again] == [h.doc_id for h in first]
        np.testing.assert_allclose([h.score for h in again], [h.score for h in first], atol=1e-5)


def test_bm25_hits_reranked_by_minilm_cosine_and_tail_kept(cranfield_bm25: Path) -> None:
    from tessera.models.registry import load_encoder

    index, depth = Index.load(cranfield_bm25), 10
    hits = index.search(QUERIES[0], k=25, with_text=True)
    out = rerank(load_reranker("minilm"), QUERIES[:1], [hits], depth=depth)[0]
    encoder = load_encoder("minilm")
    cosine = encoder.encode_docs([hit_text(h) for h in hits[:depth]]) @ encoder.encode_queries(QUERIES[:1])[0]
    expected = [hits[i].doc_id for i in np.argsort(-cosine, kind="stable")]
    assert [h.doc_id for h in out[:depth]] == expected
    np.testing.assert_allclose([h.score for h in out[:depth]], np.sort(cosine)[::-1], atol=1e-5)
    assert [h.doc_id for h in out[depth:]] == [h.doc_id for h in hits[depth:]]  # the tail, in order
    assert [h.rank for h in out] == list(range(1, 26))
    assert max(h.score for h in out[depth:]) < min(h.score for h in out[:depth])


def test_encoder_reranker_cache_follows_the_text_not_the_id() -> None:
    # Collections reuse ids (Cranfield's "1" is not CISI's "1"): one reranker serves both.
    from tessera.models.registry import load_encoder
    from tessera.retrieval.hits import Hit

    reranker, encoder = load_reranker("minilm"), load_encoder("minilm")
    for text in ("boundary layer transition on a flat plate", "library cataloguing of serials"):
        got = rerank(reranker, QUERIES[1:], [[Hit("1", 0.0, 1, None, text)]], depth=1)[0][0].score
        expected = float(encoder.encode_docs([text])[0] @ encoder.encode_queries(QUERIES[1:])[0])
        assert got == pytest.approx(expected, abs=1e-5)


def test_colbert_model_reranks_by_exact_maxsim(cranfield_tokens: Path, token_model: Path) -> None:
    # colbert mode: exact MaxSim of its candidates; the documents were encoded in other batches,
    # which moves a score of ~14 by up to 4e-4
    index = Index.load(cranfield_tokens)
    rows = index.batch_search(QUERIES, k=15, with_text=True)
    reranked = rerank(load_reranker(f"colbert:{token_model}"), QUERIES, rows, depth=15)
    for first, again in zip(rows, reranked, strict=True):
        assert [h.doc_id for h in again] == [h.doc_id for h in first]
        np.testing.assert_allclose([h.score for h in again], [h.score for h in first], rtol=1e-4)


def test_cross_encoder_scores_are_its_predictions(cranfield_bm25: Path, tmp_path: Path) -> None:
    # No cross-encoder weights ship here: MiniLM with a fresh (seeded) one-score head is one.
    import torch
    from sentence_transformers import CrossEncoder

    from tessera.models.bundled import bundled_path

    torch.manual_seed(0)
    CrossEncoder(str(bundled_path("minilm")), num_labels=1, device="cpu").save_pretrained(
        str(tmp_path / "ce")
    )
    hits = Index.load(cranfield_bm25).search(QUERIES[1], k=12, with_text=True)
    out = rerank(load_reranker(f"cross-encoder:{tmp_path / 'ce'}"), QUERIES[1:], [hits], depth=12)[0]
    predicted = CrossEncoder(str(tmp_path / "ce"), device="cpu").predict(
        [(QUERIES[1], hit_text(h)) for h in hits]
    )
    assert [h.doc_id for h in out] == [hits[i].doc_id for i in np.argsort(-predicted, kind="stable")]
    np.testing.assert_allclose([h.score for h in out], np.sort(predicted)[::-1], atol=1e-5)

    CrossEncoder(str(bundled_path("minilm")), num_labels=3, device="cpu").save_pretrained(
        str(tmp_path / "nli")
    )
    with pytest.raises(EncoderError, match="3 scores a pair"):
        rerank(load_reranker(f"cross-encoder:{tmp_path / 'nli'}"), QUERIES[1:], [hits], depth=5)


def test_query_likelihood_is_the_llms_log_probability_of_the_query(cranfield_bm25: Path) -> None:
    import torch

    from tessera.retrieval.rerank.query_likelihood import QueryLikelihoodReranker

    hits = Index.load(cranfield_bm25).search(QUERIES[0], k=4, with_text=True)
    texts = [hit_text(h) for h in hits]
    reranker = QueryLikelihoodReranker(batch_size=4, passage_tokens=64)  # short passages: a quick test
    reranker.bf16 = False
    batched = reranker.score(QUERIES[0], texts)
    # One passage at a time, no padding, every logit computed: the same numbers.
    query_ids = reranker.tokenizer(" " + QUERIES[0], add_special_tokens=False)["input_ids"]
    for text, score in zip(texts, batched, strict=True):
        prompt = reranker._prompt_ids(text)
        with torch.inference_mode():
            logits = reranker.model(input_ids=torch.tensor([prompt + query_ids])).logits[0]
        log_probs = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
        expected = log_probs[torch.arange(len(query_ids)), torch.tensor(query_ids)].mean()
        assert score == pytest.approx(float(expected), abs=1e-4)
    assert reranker.score(QUERIES[0], []).shape == (0,)
    out = rerank(reranker, QUERIES[:1], [hits], depth=4)[0]
    assert [h.doc_id for h in out] == [hits[i].doc_id for i in np.argsort(-batched, kind="stable")]


def test_iter_search_reranks_the_fused_first_stage(cranfield_bm25: Path, cranfield_dense: Path) -> None:
    indexes = [Index.load(cranfield_bm25), Index.load(cranfield_dense)]
    queries = dict(zip(["1", "2"], QUERIES, strict=True))
    reranker = load_reranker("minilm")
    got = dict(
        iter_search(indexes, queries, k=5, depth=50, reranker=reranker, rerank_depth=20, show_progress=False)
    )
    first = hybrid_search(indexes, QUERIES, k=20, depth=50, with_text=True)
    expected = rerank(reranker, QUERIES, first, depth=20)
    for qid, row in zip(queries, expected, strict=True):
        assert [h.doc_id for h in got[qid]] == [h.doc_id for h in row[:5]]
        assert all(h.text is None for h in got[qid])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bm25", "bm25 cannot rerank"),
        ("", "empty reranker spec"),
        ("cross-encoder:", "names no model"),
        ("no-such-model", "unknown encoder"),
    ],
)
def test_bad_reranker_specs_are_refused(spec: str, message: str) -> None:
    with pytest.raises(EncoderError, match=message):
        load_reranker(spec)


def test_cli_search_rerank(cranfield_bm25: Path) -> None:
    shown = run_cli("search", str(cranfield_bm25), QUERIES[0], "-k", "3", "--rerank", "minilm", "--json")
    hits = json.loads(shown.stdout)
    expected = rerank(
        load_reranker("minilm"), QUERIES[:1], [Index.load(cranfield_bm25).search(QUERIES[0], 100, True)], 100
    )[0][:3]
    assert [h["doc_id"] for h in hits] == [h.doc_id for h in expected]

    refused = run_cli("search", str(cranfield_bm25), QUERIES[0], "--rerank", "bm25", check=False)
    assert refused.returncode != 0 and "bm25 cannot rerank" in refused.stderr
    refused = run_cli(
        "search", str(cranfield_bm25), QUERIES[0], "--rerank", "minilm", "--rerank-depth", "0", check=False
    )
    assert refused.returncode != 0 and "rerank_depth" in refused.stderr


def test_cli_eval_and_query_set_rerank_equal_evaluate(cranfield_head: Path, tmp_path: Path) -> None:
    from tessera.eval.evaluate import evaluate
    from tessera.eval.runs import read_trec

    # 150 Cranfield documents and the test queries judged on them: a few seconds to rerank
    index = tmp_path / "head-bm25"
    run_cli("index", str(cranfield_head / "corpus.jsonl"), "-o", str(index), "--encoder", "bm25")
    options = ["--rerank", "minilm", "--rerank-depth", "20"]
    report, run_path = tmp_path / "m.json", tmp_path / "run.trec"
    shown = run_cli("eval", str(index), "--dataset", str(cranfield_head), *options, "--json", str(report))
    assert "first stage" in shown.stdout and "reranked by minilm" in shown.stdout
    expected = evaluate([index], cranfield_head, show_progress=False, rerank="minilm", rerank_depth=20)
    assert json.loads(report.read_text()) == pytest.approx(expected.metrics, abs=1e-9)
    first = evaluate([index], cranfield_head, show_progress=False)
    assert expected.metrics["nDCG@10"] != pytest.approx(first.metrics["nDCG@10"], abs=1e-6)

    run_cli(
        "search", str(index), "--queries", str(cranfield_head), "--run", str(run_path), "-k", "10", *options
    )
    written = read_trec(run_path)
    assert written.keys() == expected.run.keys()
    for qid, hits in written.items():
        assert [h.doc_id for h in hits] == [h.doc_id for h in expected.run[qid][:10]]


def test_rag_context_is_the_reranked_top_k(cranfield_bm25: Path) -> None:
    from tessera.rag.pipeline import prepare

    prompt = prepare(cranfield_bm25, QUERIES[1], k=3, generator="none", rerank="minilm", rerank_depth=30)
    first = Index.load(cranfield_bm25).search(QUERIES[1], k=30, with_text=True)
    expected = rerank(load_reranker("minilm"), QUERIES[1:], [first], depth=30)[0][:3]
    assert [s["doc_id"] for s in prompt.sources] == [h.doc_id for h in expected]
    assert [h.doc_id for h in expected] != [h.doc_id for h in first[:3]]  # reranking changed them
