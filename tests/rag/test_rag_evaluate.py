"""`evaluate_rag`: token ratio and retention as defined in tessera/rag/retention.py."""

from __future__ import annotations

import json

import pytest

from tessera.data.datasets import load_eval_dataset
from tessera.models.registry import load_encoder
from tessera.rag import evaluate_rag
from tessera.rag.evaluate import summarize_rows
from tessera.rag.retention import TermRetention, content_terms, semantic_kept
from tessera.retrieval.fusion import hybrid_search
from tessera.retrieval.index import Index


def test_content_terms_are_stemmed_without_stopwords():
    assert content_terms("The boundary layers were transitioning at Mach 2.5") == [
        "boundari",
        "layer",
        "transit",
        "mach",
        "2.5",
    ]


def test_term_retention_keeps_a_passage_with_half_its_top_terms():
    corpus = ["heat conduction in slabs", "boundary layer on wings", "shock waves in nozzles", "heat flux"]
    terms = TermRetention(corpus)
    passage = "transient heat conduction into a double layer slab with a linear heat input"
    top = terms.top_terms(passage)
    assert top[0] == "heat" and len(top) == 8  # 8 distinct content terms, most frequent first
    assert terms.kept(passage, set(top[:4])) and not terms.kept(passage, set(top[:3]))
    assert not terms.kept(passage, set())


def test_semantic_retention_needs_a_close_sentence():
    embed = load_encoder("minilm").encode_docs
    passage = "the boundary layer on a flat plate becomes turbulent at high reynolds numbers ."
    vectors = embed([passage])
    assert semantic_kept(embed, vectors, "unrelated text about cooking . " + passage) == [True]
    assert semantic_kept(embed, vectors, "the recipe needs two eggs and some flour .") == [False]
    assert semantic_kept(embed, vectors, "") == [False]


def test_summary_micro_averages_over_relevant_passages():
    rows = [
        {
            "plain_tokens": 125,  # the layout's line breaks and indents counted
            "flat_plain_tokens": 100,
            "prompt_tokens": 50,
            "truncation_tokens": 50,
            "relevant_judged": 6,
            "relevant_in_top_k": 3,
            "kept": 3,
            "semantic_kept": 2,
            "truncation_kept": 1,
            "truncation_semantic_kept": 1,
            "compress_ms": 2.0,
        },
        {
            "plain_tokens": 200,
            "flat_plain_tokens": 200,
            "prompt_tokens": 50,
            "truncation_tokens": 52,
            "relevant_judged": 2,
            "relevant_in_top_k": 1,
            "kept": 0,
            "semantic_kept": 0,
            "truncation_kept": 1,
            "truncation_semantic_kept": 1,
            "compress_ms": 4.0,
        },
        {
            "plain_tokens": 100,
            "flat_plain_tokens": 100,
            "prompt_tokens": 100,
            "truncation_tokens": 100,
            "relevant_judged": 0,
            "relevant_in_top_k": 0,
            "kept": 0,
            "semantic_kept": 0,
            "truncation_kept": 0,
            "truncation_semantic_kept": 0,
            "compress_ms": 0.0,
        },
    ]
    summary = summarize_rows(rows)
    assert summary["token_ratio"] == pytest.approx((0.5 + 0.25 + 1.0) / 3)
    assert summary["raw_token_ratio"] == pytest.approx((0.4 + 0.25 + 1.0) / 3)
    assert summary["retention"] == pytest.approx(3 / 4) and summary["semantic_retention"] == pytest.approx(
        2 / 4
    )
    assert summary["truncation_retention"] == pytest.approx(2 / 4)
    assert summary["judged_query_count"] == 2 and summary["relevant_passages"] == 4
    assert summary["answer_agreement"] is None
    # recall: per query over all its judged-relevant documents, mean over the two with any
    assert summary["recall"] == pytest.approx((3 / 6 + 1 / 2) / 2)
    assert summary["kept_recall"] == pytest.approx((3 / 6 + 0 / 2) / 2)
    assert summary["truncation_kept_recall"] == pytest.approx((1 / 6 + 1 / 2) / 2)


def test_evaluate_rag_on_cranfield_queries(cranfield_dense, tmp_path):
    out = tmp_path / "crag.json"
    result = evaluate_rag(
        cranfield_dense, "cranfield", compress="crag", max_queries=4, json_path=out, show_progress=False
    )
    assert json.loads(out.read_text())["token_ratio"] == pytest.approx(result["token_ratio"])
    assert result["query_count"] == 4 and result["judged_query_count"] >= 3
    assert 0.3 < result["token_ratio"] < 0.65
    for name in ("retention", "semantic_retention", "truncation_retention"):
        assert 0.0 <= result[name] <= 1.0
    for row in result["queries"]:  # the baseline is cut to the compressed context's tokens
        assert abs(row["truncation_tokens"] - row["prompt_tokens"]) <= 0.1 * row["prompt_tokens"]


def test_evaluate_rag_over_fused_retrieval_counts_recall_by_hand(cranfield_dense, cranfield_bm25):
    dense, bm25 = Index.load(cranfield_dense), Index.load(cranfield_bm25)
    result = evaluate_rag(
        dense, "cranfield", compress="none", max_queries=6, fuse=[bm25], depth=50, show_progress=False
    )
    assert result["fuse"] == [str(bm25.root)] and result["fusion"] == "rrf"
    data = load_eval_dataset("cranfield", "test")
    qids = list(data.queries)[:6]
    fused = hybrid_search([dense, bm25], [data.queries[q] for q in qids], 10, 50)
    recalls = []
    for qid, hits, row in zip(qids, fused, result["queries"], strict=True):
        relevant = {d for d, grade in data.qrels[qid].items() if grade > 0}
        assert row["query_id"] == qid and row["relevant_judged"] == len(relevant)
        assert row["relevant_in_top_k"] == len(relevant & {h.doc_id for h in hits})
        recalls.append(row["relevant_in_top_k"] / len(relevant))
    assert result["recall"] == pytest.approx(sum(recalls) / len(recalls))
    assert result["kept_recall"] == result["recall"] and result["retention"] == 1.0  # nothing compressed


def test_an_interrupted_evaluation_resumes_from_its_finished_queries(cranfield_bm25, tmp_path, monkeypatch):
    from tessera.rag import evaluate as module

    real_prepare, calls = module.prepare, []

    def counting(*args, **kwargs):
        calls.append(args[1])
        if fail_at and len(calls) == fail_at:
            raise KeyboardInterrupt
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(module, "prepare", counting)
    out, options = (
        tmp_path / "r" / "eval.json",
        {"compress": "none", "max_queries": 4, "show_progress": False},
    )
    journal = out.with_name("eval.json.rows.jsonl")

    def run(k: int = 10, json_path=out):
        calls.clear()
        return evaluate_rag(cranfield_bm25, "cranfield", k=k, json_path=json_path, **options)

    fail_at = 3
    with pytest.raises(KeyboardInterrupt):
        run()
    assert not out.exists() and len(journal.read_text().splitlines()) == 3  # settings + 2 queries
    fail_at = 0
    resumed = run()
    assert len(calls) == 2 and not journal.exists()  # only the two queries left
    assert json.loads(out.read_text())["queries"] == resumed["queries"]
    fresh = run(json_path=None)

    def measured(rows):
        return [{key: value for key, value in row.items() if key != "compress_ms"} for row in rows]

    assert measured(resumed["queries"]) == measured(fresh["queries"])
    fail_at = 2
    with pytest.raises(KeyboardInterrupt):
        run()
    fail_at = 0
    run(k=5)  # other settings: the rows of k=10 are not reused
    assert len(calls) == 4
    fail_at = 2
    with pytest.raises(KeyboardInterrupt):
        run()
    fail_at = 0
    calls.clear()
    expanded = evaluate_rag(  # other search parameters: nothing reused either
        cranfield_bm25, "cranfield", json_path=out, search_params={"prf": "rocchio"}, **options
    )
    assert len(calls) == 4 and expanded["search_params"] == {"prf": "rocchio"}


def test_an_output_folder_and_judgments_of_no_relevant_document_are_refused_first(cranfield_bm25, tmp_path):
    """A folder as --json failed with "[Errno 21] Is a directory" after every query was measured,
    leaving its journal behind; a split judging no document relevant gave nulls and exit 0."""
    from tessera.errors import TesseraError

    with pytest.raises(TesseraError, match="is a folder: name the file to write") as info:
        evaluate_rag(cranfield_bm25, "cranfield", compress="none", json_path=tmp_path, show_progress=False)
    assert info.value.field == "json" and list(tmp_path.iterdir()) == []
    folder = tmp_path / "zero"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text('{"_id": "1", "text": "wing"}\n')
    (folder / "queries.jsonl").write_text('{"_id": "3", "text": "wings"}\n')
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n3\t1\t0\n")
    with pytest.raises(TesseraError, match="no judgment of split 'test' marks a document relevant"):
        evaluate_rag(cranfield_bm25, folder, compress="none", show_progress=False)
