from __future__ import annotations

import json
from pathlib import Path

import pytest

from tessera.cli import _expand_multi_value
from tests.conftest import run_cli


def test_index_search_eval_through_the_cli(
    cranfield_bm25: Path, cranfield_dense: Path, tmp_path: Path
) -> None:
    hits = json.loads(
        run_cli("search", str(cranfield_bm25), "boundary layer transition", "-k", "3", "--json").stdout
    )
    assert [h["rank"] for h in hits] == [1, 2, 3] and all(h["text"] for h in hits)

    result = run_cli(
        "eval",
        str(cranfield_bm25),
        str(cranfield_dense),
        "--dataset",
        "cranfield",
        "--metrics",
        "nDCG@10",
        "R@100",
        "--depth",
        "100",
        "--run",
        str(tmp_path / "run.trec"),
        "--json",
        str(tmp_path / "m.json"),
    )
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert list(metrics) == ["nDCG@10", "R@100"]
    assert 0.35 < metrics["nDCG@10"] < 0.40
    assert "rrf fusion" in result.stdout
    assert len((tmp_path / "run.trec").read_text().splitlines()) == 225 * 100


def test_search_refuses_k_below_one(cranfield_bm25: Path, cranfield_dense: Path) -> None:
    for index in (cranfield_bm25, cranfield_dense):
        result = run_cli("search", str(index), "boundary layer", "-k", "0", check=False)
        assert result.returncode == 1 and "field 'k': k must be at least 1, got 0" in result.stderr
        assert "Traceback" not in result.stderr


def test_quickstart_runs_offline(tmp_path: Path) -> None:
    result = run_cli("quickstart", "immune memory after vaccination", "-k", "2")
    assert "Vaccination" in result.stdout or "Immune memory" in result.stdout


def test_quickstart_builds_a_damaged_sample_again_and_names_a_foreign_folder(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    environment = {"TESSERA_CACHE_DIR": str(cache)}
    run_cli("quickstart", "vaccines", "-k", "1", env=environment)
    (cache / "quickstart-minilm" / "vectors.faiss").unlink()  # damaged: the cache's own index, made again
    again = run_cli("quickstart", "vaccines", "-k", "1", env=environment)
    assert "Vaccination" in again.stdout and (cache / "quickstart-minilm" / "vectors.faiss").is_file()
    foreign = tmp_path / "other"
    (foreign / "quickstart-minilm").mkdir(parents=True)
    (foreign / "quickstart-minilm" / "notes.txt").write_text("mine")
    refused = run_cli("quickstart", env={"TESSERA_CACHE_DIR": str(foreign)}, check=False)
    assert (
        refused.returncode == 1
        and "holds files that are not a Tessera index: move them away" in refused.stderr
    )
    assert (
        "--overwrite" not in refused.stderr
        and (foreign / "quickstart-minilm" / "notes.txt").read_text() == "mine"
    )
    a_file = tmp_path / "cache-file"
    a_file.write_text("x")
    blocked = run_cli("quickstart", env={"TESSERA_CACHE_DIR": str(a_file)}, check=False)
    assert blocked.returncode == 1 and "field 'TESSERA_CACHE_DIR': the cache folder" in blocked.stderr
    sample_file = tmp_path / "third"
    sample_file.mkdir()
    (sample_file / "quickstart-minilm").write_text("x")  # was advised `--overwrite`, which quickstart lacks
    blocked = run_cli("quickstart", env={"TESSERA_CACHE_DIR": str(sample_file)}, check=False)
    assert blocked.returncode == 1 and "quickstart-minilm: is a file, not the sample index: move it away" in (
        blocked.stderr
    )
    for args, said in [(["", "-k", "1"], "query 1 of 1 is empty"), (["-k", "0"], "k must be at least 1")]:
        refused = run_cli("quickstart", *args, env={"TESSERA_CACHE_DIR": str(tmp_path / "new")}, check=False)
        assert refused.returncode == 1 and said in refused.stderr  # "" ran the default query
        assert not (tmp_path / "new").exists()  # refused before the sample was indexed


def test_metrics_option_takes_several_values() -> None:
    argv = ["eval", "a", "b", "--metrics", "nDCG@10", "R@100", "--dataset", "x", "--metrics", "AP"]
    assert _expand_multi_value(argv) == [
        "eval",
        "a",
        "b",
        "--metrics",
        "nDCG@10",
        "--metrics",
        "R@100",
        "--dataset",
        "x",
        "--metrics",
        "AP",
    ]


def test_search_fuses_indexes_as_hybrid_search(cranfield_bm25: Path, cranfield_dense: Path) -> None:
    from tessera.retrieval.fusion import hybrid_search
    from tessera.retrieval.index import Index

    query = "boundary layer transition"
    dense, bm25 = Index.load(cranfield_dense), Index.load(cranfield_bm25)
    rm3 = Index.load(cranfield_bm25, search_params={"prf": "rm3"})
    for options, fusion, weights, indexes in [
        ([], "rrf", None, [dense, bm25]),
        (["--fusion", "wsum", "--weights", "3,1"], "wsum", [3, 1], [dense, bm25]),
        (["--param", "prf=rm3"], "rrf", None, [dense, rm3]),  # BM25's parameter goes to BM25 only
    ]:
        args = ("search", str(cranfield_dense), query, "--fuse", str(cranfield_bm25), "-k", "5", "--json")
        hits = json.loads(run_cli(*args, *options).stdout)
        expected = hybrid_search(indexes, [query], k=5, depth=100, fusion=fusion, weights=weights)[0]
        assert [(h["doc_id"], h["rank"]) for h in hits] == [(h.doc_id, h.rank) for h in expected]
        assert [h["score"] for h in hits] == pytest.approx([h.score for h in expected], abs=1e-6)
        assert all(h["text"] for h in hits)  # the first index's stored text

    for index, options, message in [
        (cranfield_dense, ["--weights", "1,2"], "field 'fuse': fusion and weights need indexes to fuse with"),
        (
            cranfield_dense,
            ["--fuse", str(cranfield_bm25), "--fusion", "wsum", "--weights", "1"],
            "1 weights for 2 runs",
        ),
        (cranfield_dense, ["--param", "prf=rm3"], "prf applies to BM25 indexes only"),
        (cranfield_bm25, ["--param", "nprobe=4"], "nprobe does not apply to a BM25 index"),
    ]:
        bad = run_cli("search", str(index), query, *options, check=False)
        assert bad.returncode == 1 and message in bad.stderr and "Traceback" not in bad.stderr


def test_bm25_settings_given_at_indexing_are_the_stored_defaults(
    cranfield_head: Path, tmp_path: Path
) -> None:
    from tessera.indexing.manifest import Manifest
    from tessera.retrieval.index import Index

    run_cli(
        "index",
        str(cranfield_head),
        "-o",
        str(tmp_path / "rocchio"),
        "--encoder",
        "bm25",
        "--param",
        "prf=rocchio",
    )
    manifest = Manifest.read(tmp_path / "rocchio")
    assert (
        manifest.encoder
        == "bm25:k1=0.9,b=0.4,title=0.25,prf=rocchio,fb_terms=10,fb_docs=10,alpha=1,beta=0.75"
    )
    query = "boundary layer transition"
    stored = [h.doc_id for h in Index.load(tmp_path / "rocchio").search(query, k=10)]
    assert stored == [
        h.doc_id
        for h in Index.load(tmp_path / "rocchio", search_params={"prf": "rocchio"}).search(query, k=10)
    ]
    assert stored != [
        h.doc_id for h in Index.load(tmp_path / "rocchio", search_params={"prf": "none"}).search(query, k=10)
    ]


def test_python_dash_m_tessera_is_the_command_line() -> None:
    import subprocess
    import sys

    command = [sys.executable, "-m", "tessera", "search", "--help"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0 and "--queries" in result.stdout


def test_search_runs_a_queries_file_into_a_trec_run(
    cranfield_bm25: Path, cranfield_dense: Path, tmp_path: Path
) -> None:
    from tessera.data.datasets import load_eval_dataset
    from tessera.eval.runs import read_trec
    from tessera.retrieval.fusion import hybrid_search
    from tessera.retrieval.index import Index
    from tessera.retrieval.query_set import QUERY_BATCH

    queries = {"t2": "heat transfer at hypersonic speeds", "t1": "boundary layer transition"}
    topics = tmp_path / "topics.tsv"
    topics.write_text("".join(f"{qid}\t{text}\n" for qid, text in queries.items()))
    bm25, dense = Index.load(cranfield_bm25), Index.load(cranfield_dense)

    alone = tmp_path / "bm25.trec"
    result = run_cli("search", str(cranfield_bm25), "--queries", str(topics), "--run", str(alone), "-k", "7")
    assert "2 queries, 14 hits" in result.stdout
    run = read_trec(alone)
    assert list(run) == ["t2", "t1"]  # the file's order
    for qid, expected in zip(queries, bm25.batch_search(list(queries.values()), 7), strict=True):
        assert [(h.doc_id, h.rank) for h in run[qid]] == [(h.doc_id, h.rank) for h in expected]
        assert [h.score for h in run[qid]] == pytest.approx([h.score for h in expected], abs=1e-6)

    fused = tmp_path / "fused.trec"
    args = ("--queries", str(topics), "--run", str(fused), "-k", "5", "--fuse", str(cranfield_bm25))
    run_cli("search", str(cranfield_dense), *args, "--fusion", "wsum", "--weights", "2,1")
    run = read_trec(fused)
    texts = list(queries.values())
    expected = hybrid_search([dense, bm25], texts, k=5, depth=100, fusion="wsum", weights=[2, 1])
    for qid, hits in zip(queries, expected, strict=True):
        assert [(h.doc_id, h.rank) for h in run[qid]] == [(h.doc_id, h.rank) for h in hits]
        assert [h.score for h in run[qid]] == pytest.approx([h.score for h in hits], abs=1e-6)

    judged = tmp_path / "test.trec"  # more queries than one batch; -k left at a run's 1000
    args = ("--queries", "cranfield-beir", "--run", str(judged), "--fuse", str(cranfield_bm25))
    run_cli("search", str(cranfield_dense), *args)
    run, test = read_trec(judged), load_eval_dataset("cranfield-beir", "test").queries
    assert list(run) == list(test) and len(test) > 64
    texts = list(test.values())  # queries encoded in the same batches (padding moves floats)
    expected = [
        hits
        for start in range(0, len(texts), QUERY_BATCH)
        for hits in hybrid_search([dense, bm25], texts[start : start + QUERY_BATCH], k=1000, depth=1000)
    ]
    for qid, hits in zip(test, expected, strict=True):
        # read back as trec_eval reads a file: by its 6-decimal scores, ties by document id down
        as_read = sorted(hits, key=lambda h: (float(f"{h.score:.6f}"), h.doc_id), reverse=True)
        assert [h.doc_id for h in run[qid]] == [h.doc_id for h in as_read] and len(hits) == 1000

    bad_topics = tmp_path / "bad.tsv"
    bad_topics.write_text("t1\tfine\nt2\n")
    for options, message in [
        ([], "field 'query': QUERY (or --queries FILE) is missing"),
        (["q", "--queries", str(topics), "--run", str(alone)], "give a QUERY or --queries, not both"),
        (["--queries", str(topics)], "field 'run': --queries writes a TREC run: give --run FILE"),
        (["q", "--run", str(alone)], "field 'run': --run needs --queries"),
        (["q", "--remove-query"], "field 'remove-query': --remove-query needs --queries"),
        (["--queries", str(bad_topics), "--run", str(tmp_path / "x.trec")], f"{bad_topics}:2"),
    ]:
        bad = run_cli("search", str(cranfield_bm25), *options, check=False)
        assert bad.returncode == 1 and message in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "x.trec").exists()


def test_remove_query_in_runs_and_evaluation(cranfield_bm25: Path, tmp_path: Path) -> None:
    from tessera.eval.evaluate import evaluate
    from tessera.eval.runs import read_trec

    out = tmp_path / "dropped.trec"
    run_cli(
        "search",
        str(cranfield_bm25),
        "--queries",
        "cranfield-beir",
        "--run",
        str(out),
        "-k",
        "50",
        "--remove-query",
    )
    run = read_trec(out)
    assert run and all(hit.doc_id != qid for qid, hits in run.items() for hit in hits)
    assert any(len(hits) == 49 for hits in run.values())  # a query whose own id was among its 50
    metrics_file = tmp_path / "metrics.json"
    run_cli(
        "eval",
        str(cranfield_bm25),
        "--dataset",
        "cranfield-beir",
        "--remove-query",
        "--json",
        str(metrics_file),
    )
    scores = json.loads(metrics_file.read_text())
    expected = evaluate([cranfield_bm25], "cranfield-beir", show_progress=False, remove_query=True)
    plain = evaluate([cranfield_bm25], "cranfield-beir", show_progress=False)
    assert scores == pytest.approx(expected.metrics)
    assert expected.metrics != pytest.approx(plain.metrics)


def test_users_text_is_printed_as_given_never_as_markup(tmp_path: Path) -> None:
    """Ids, titles and texts may hold `[/i]` or `[bold]`: rich markup would crash or eat them."""
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        '{"_id": "[bold]x", "title": "[red]Title", "text": "matrix a[/i] element zyzzyva"}\n'
        '{"_id": " pad ", "text": "padded identifier"}\n{"_id": "other", "text": "unrelated"}\n'
    )
    index = tmp_path / "idx"
    run_cli("index", str(corpus), "-o", str(index), "--encoder", "bm25")
    shown = run_cli("search", str(index), "zyzzyva", check=False)
    assert shown.returncode == 0 and "Traceback" not in shown.stderr, shown.stderr
    assert "[bold]x" in shown.stdout and "[red]Title" in shown.stdout and "a[/i]" in shown.stdout
    ids_file = tmp_path / "ids.txt"  # ids exactly as the corpus gave them, spaces kept
    ids_file.write_text(" pad \n")
    assert "deleted 1 documents" in run_cli("delete", str(index), "--ids-file", str(ids_file)).stdout
    queries = tmp_path / "q.tsv"
    queries.write_text("q1\tzyzzyva\n")
    (tmp_path / "runs").mkdir()
    for args, message in [
        (["search", str(index), "zyzzyva", "--per-document", "0"], "field 'per_document': must be at least"),
        (
            ["search", str(index), "zyzzyva", "--per-document", "3"],
            "come from a chunked index (index --chunk)",
        ),
        (["search", str(index), "--queries", str(queries), "--run", str(tmp_path / "runs")], "is a folder"),
    ]:
        result = run_cli(*args, check=False)
        assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.glob("runs.tmp*"))


def test_progress_descriptions_are_text_not_markup() -> None:
    from io import StringIO

    from rich.console import Console

    from tessera.progress import progress_bar, quiet_bar

    for bar in (progress_bar(True), quiet_bar(True)):
        bar.live.console = Console(file=StringIO(), force_terminal=True, width=120)
        with bar:
            task = bar.add_task("indexing /data/a[/i]b", total=2)
            bar.advance(task, 2)
        assert "a[/i]b" in bar.console.file.getvalue()
