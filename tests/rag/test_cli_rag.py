"""`tessera rag` and `tessera eval-rag` as users run them."""

from __future__ import annotations

import json
from pathlib import Path

from tessera.retrieval.fusion import hybrid_search
from tessera.retrieval.index import Index
from tests.conftest import run_cli

QUESTION = "what are the structural and aeroelastic problems associated with flight of high speed aircraft"


def test_rag_json_reports_sources_and_tokens(cranfield_dense: Path) -> None:
    result = run_cli(
        "rag",
        str(cranfield_dense),
        QUESTION,
        "-k",
        "6",
        "--compress",
        "tcra-summary",
        "--generator",
        "none",
        "--json",
    )
    answer = json.loads(result.stdout)
    assert answer["answer"] is None and len(answer["sources"]) == 6
    settings = [answer[name] for name in ("k", "compress", "budget", "order", "generator")]
    assert settings == [6, "tcra-summary", None, "rank", None]  # what made the prompt, recorded
    assert [s["cite"] for s in answer["sources"]] == [1, 2, 3, 4, 5, 6]  # rank order: one block each
    shown = run_cli(
        "rag", str(cranfield_dense), QUESTION, "-k", "4", "--order", "reverse", "--generator", "none"
    ).stdout.splitlines()  # fmt: skip
    ranked = [s["doc_id"] for s in answer["sources"][:4]]
    # the lines as the prompt numbers its blocks (they were [1]..[4] in rank order, unlike the prompt)
    assert [line.split()[:2] for line in shown[:4]] == [[f"[{n}]", ranked[4 - n]] for n in range(1, 5)]
    assert [c["sources"] for c in answer["context"]] == [[s["doc_id"]] for s in answer["sources"]]
    assert answer["prompt_tokens"] < 0.7 * answer["plain_tokens"]


def test_rag_retrieves_from_fused_indexes(cranfield_dense: Path, cranfield_bm25: Path) -> None:
    result = run_cli(
        "rag",
        str(cranfield_dense),
        QUESTION,
        "-k",
        "5",
        "--fuse",
        str(cranfield_bm25),
        "--fusion",
        "wsum",
        "--weights",
        "0.5,0.5",
        "--generator",
        "none",
        "--json",
    )
    answer = json.loads(result.stdout)
    indexes = [Index.load(cranfield_dense), Index.load(cranfield_bm25)]
    expected = hybrid_search(indexes, [QUESTION], k=5, depth=100, fusion="wsum")[0]
    assert [s["doc_id"] for s in answer["sources"]] == [h.doc_id for h in expected]
    assert answer["indexes"] == [str(cranfield_dense), str(cranfield_bm25)] and answer["fusion"] == "wsum"


def test_rag_takes_search_parameters_by_index_kind(cranfield_dense: Path, cranfield_bm25: Path) -> None:
    args = ("rag", str(cranfield_bm25), QUESTION, "-k", "5", "--generator", "none", "--json")
    alone = json.loads(run_cli(*args, "--param", "prf=rocchio").stdout)
    rocchio = Index.load(cranfield_bm25, search_params={"prf": "rocchio"})
    assert [s["doc_id"] for s in alone["sources"]] == [h.doc_id for h in rocchio.search(QUESTION, k=5)]
    fused = json.loads(run_cli(*args, "--fuse", str(cranfield_dense), "--param", "prf=rocchio").stdout)
    expected = hybrid_search([rocchio, Index.load(cranfield_dense)], [QUESTION], k=5, depth=100)[0]
    assert [s["doc_id"] for s in fused["sources"]] == [h.doc_id for h in expected]
    bad = run_cli(
        "rag", str(cranfield_dense), QUESTION, "--generator", "none", "--param", "prf=rm3", check=False
    )
    assert bad.returncode == 1 and "prf applies to BM25 indexes only" in bad.stderr


def test_rag_streams_an_answer(cranfield_dense: Path) -> None:
    result = run_cli("rag", str(cranfield_dense), QUESTION, "-k", "3", "--max-new-tokens", "24")
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("[1] ") and lines[3].startswith("prompt tokens: ")
    assert len(" ".join(lines[4:]).split()) >= 3  # the streamed answer


def test_rag_chat_answers_follow_ups_from_standard_input(cranfield_dense: Path) -> None:
    follow_up = "and how is it measured in a wind tunnel"
    args = ("rag", str(cranfield_dense), QUESTION, "-k", "3", "--generator", "none", "--chat")
    result = run_cli(*args, "--follow-up", "turns", input=f"{follow_up}\n\nnever read\n")
    lines = result.stdout.strip().splitlines()
    assert [n for n, line in enumerate(lines) if line.startswith("prompt tokens: ")] == [3, 8]
    assert lines[4] == f"searched: {QUESTION} {follow_up}"  # the turns, one line
    index = Index.load(cranfield_dense)
    for first, question in [(0, QUESTION), (5, f"{QUESTION}\n{follow_up}")]:
        ids = [line.split()[1] for line in lines[first : first + 3]]
        assert ids == [h.doc_id for h in index.search(question, k=3)]
    own = run_cli(*args, input=f"{follow_up}\n").stdout.strip().splitlines()
    assert not any(line.startswith("searched: ") for line in own)  # the default: its own words
    assert [line.split()[1] for line in own[4:7]] == [h.doc_id for h in index.search(follow_up, k=3)]


def test_rag_refuses_bad_input_in_one_line(cranfield_dense: Path, cranfield_bm25: Path) -> None:
    for args, message in [
        (["-k", "0"], "field 'k': k must be at least 1"),
        (["--compress", "zip"], "field 'compress': unknown compressor 'zip'"),
        (["--generator", "ftp://x"], "field 'generator'"),
        (["--option", "ratio"], "field 'option': expected NAME=VALUE"),  # it said field 'param'
        (["--compress", "crag", "--option", "ratio=0.4", "--option", "ratio=0.6"], "'ratio' is given twice"),
        (["--follow-up", "turns"], "field 'follow-up': says how --chat searches follow-up questions"),
        (["--fuse", str(cranfield_dense)], f"{cranfield_dense} is given twice: an index fused with itself"),
        (["--compress", "crag", "--option", "nope=1"], "field 'option': compressor 'crag' has no option"),
        (["--compress", "crag", "--option", "ratio=abc"], "option 'ratio' of 'crag' takes a number"),
        (["--fuse", str(cranfield_bm25), "--depth", "0"], "field 'depth': must be a whole number >= 1"),
        (["--weights", "0.5,0.5"], "field 'fuse': fusion and weights need indexes to fuse with"),
        (["--fuse", str(cranfield_bm25), "--fusion", "max"], "field 'fusion': unknown fusion 'max'"),
        (["--chat", "--json"], "field 'chat': --chat streams a conversation"),
        (["--chat", "--follow-up", "rewrite"], "field 'follow_up': follow_up 'rewrite' needs a generator"),
        (["--chat", "--follow-up", "all"], "field 'follow_up': unknown follow_up 'all'"),
        (["--max-new-tokens", "0"], "field 'max_new_tokens': must be at least 1 token, got 0"),
        (
            ["--compress", "crag", "--option", "clusters=0"],
            "field 'option': option 'clusters' must be at least 1",
        ),
    ]:
        result = run_cli("rag", str(cranfield_dense), QUESTION, "--generator", "none", *args, check=False)
        assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr
    for question in ("", "   "):  # named as the CLI's argument, not the conversation it becomes
        result = run_cli("rag", str(cranfield_dense), question, "--generator", "none", check=False)
        assert result.returncode == 1 and "field 'question': the question is empty" in result.stderr
    for count in ("0", "-1"):  # a slice would have counted from the end
        result = run_cli(
            "eval-rag", str(cranfield_dense), "--dataset", "cranfield", "--max-queries", count, check=False
        )
        message = f"field 'max_queries': must be at least 1, got {count}"
        assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_eval_rag_writes_its_json(cranfield_dense: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    result = run_cli(
        "eval-rag",
        str(cranfield_dense),
        "--dataset",
        "cranfield",
        "--compress",
        "crag",
        "--max-queries",
        "2",
        "--option",
        "clusters=2",
        "--json",
        str(out),
    )
    report = json.loads(out.read_text())
    assert report["query_count"] == 2 and report["compress"] == "crag" and "token_ratio" in result.stdout
    assert {"retention", "semantic_retention", "truncation_retention", "answer_agreement"} <= set(report)
