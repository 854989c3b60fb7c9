from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tessera.data.datasets import load_eval_dataset
from tessera.errors import TesseraError
from tessera.eval.runs import read_trec, retrieve, write_trec
from tessera.retrieval.hits import Hit
from tessera.retrieval.index import Index


def test_a_failed_write_leaves_no_run_and_no_partial_file(tmp_path: Path) -> None:
    def results() -> Iterator[tuple[str, list[Hit]]]:
        yield "q1", [Hit("d1", 2.5, 1), Hit("d2", 1.0, 2)]
        raise RuntimeError("index went away")

    path = tmp_path / "runs" / "r.trec"
    with pytest.raises(RuntimeError, match="went away"):
        write_trec(results(), path)
    assert list(path.parent.iterdir()) == []
    assert write_trec({"q1": [Hit("d1", 2.5, 1)], "q2": []}, path) == (2, 1)
    assert read_trec(path) == {"q1": [Hit("d1", 2.5, 1)]}


def test_remove_query_drops_each_querys_own_id_and_ranks_again(cranfield_bm25: Path, data_dir: Path) -> None:
    """Cranfield's ids overlap by accident (query 1, document 1): a real run to filter."""
    data = load_eval_dataset(data_dir / "cranfield-beir", "test")
    index = Index.load(cranfield_bm25)
    plain = retrieve(index, data, depth=1000, show_progress=False)
    dropped = retrieve(index, data, depth=1000, show_progress=False, remove_query=True)
    removed = 0
    for qid, hits in plain.items():
        kept = [hit.doc_id for hit in hits if hit.doc_id != qid]
        assert [hit.doc_id for hit in dropped[qid]] == kept
        assert [hit.rank for hit in dropped[qid]] == list(range(1, len(kept) + 1))
        removed += len(hits) - len(kept)
    assert removed > 50  # most of the 114 test queries' ids are also document ids in their top 1000


def test_a_run_file_is_read_in_score_order_and_bad_lines_are_located(tmp_path: Path) -> None:
    path = tmp_path / "other.trec"
    path.write_text("q1 Q0 d2 1 1.5 x\n\nq1 Q0 d1 2 2.5 x\nq2 Q0 d3 1 -0.5 x\n")
    assert read_trec(path) == {"q1": [Hit("d1", 2.5, 1), Hit("d2", 1.5, 2)], "q2": [Hit("d3", -0.5, 1)]}
    for text, message in [
        ("q1 Q0 d1 1 0.9 x\nq1 Q0 d2 2\n", f"{path}:2: a run line has 4 fields"),
        ("q1 Q0 d1 1 high x\n", f"{path}:1, field 'score': score 'high' is not a finite number"),
        ("q1 Q0 d1 1 nan x\n", "score 'nan' is not a finite number"),
        ("q1 Q0 doc 1 1 0.9 x\n", f"{path}:1: a run line has 7 fields"),  # an id with a space, unread
        ("q1 Q0 d1 1 0.9 x\nq1 Q0 d1 2 0.8 x\n", f"{path}:2, field 'doc_id': document 'd1' is ranked twice"),
    ]:
        path.write_text(text)
        with pytest.raises(TesseraError, match=re.escape(message)):
            read_trec(path)
    with pytest.raises(TesseraError, match="no such run file"):
        read_trec(tmp_path / "missing.trec")


def test_ids_a_run_file_cannot_carry_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    """TREC fields are whitespace-separated: 'doc 1' would be read back as 'doc' ranked '1'."""
    path = tmp_path / "r.trec"
    cases = [({"q1": [Hit("doc 1", 1.0, 1)]}, "doc_id"), ({"q 1": [Hit("d1", 1.0, 1)]}, "query_id")]
    for run, field in cases:
        with pytest.raises(TesseraError, match="holds whitespace") as info:
            write_trec(run, path)
        assert info.value.field == field
        assert list(tmp_path.iterdir()) == []
    folder = tmp_path / "runs"
    folder.mkdir()
    with pytest.raises(TesseraError, match="is a folder"):
        write_trec({"q1": [Hit("d1", 1.0, 1)]}, folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_a_run_is_never_written_into_an_index_folder(cranfield_bm25: Path) -> None:
    """`eval --run IDX/manifest.json` replaced the manifest and broke the index."""
    before = (cranfield_bm25 / "manifest.json").read_bytes()
    with pytest.raises(TesseraError, match="inside an index's folder") as info:
        write_trec({"q1": [Hit("d1", 1.0, 1)]}, cranfield_bm25 / "manifest.json")
    assert info.value.field == "run" and (cranfield_bm25 / "manifest.json").read_bytes() == before


def test_a_run_line_that_is_not_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "latin1.trec"
    path.write_bytes(b"q1 Q0 d1 1 2.0 x\nq1 Q0 caf\xe9 2 1.0 x\n")
    with pytest.raises(TesseraError, match="latin1.trec:2: not valid UTF-8") as info:
        read_trec(path)
    assert info.value.line == 2


def test_tied_scores_are_read_in_trec_eval_order_so_a_run_fuses_with_itself_as_it_ranks(tmp_path) -> None:
    """Ties were read in file order, and RRF of a tied run with its copy outscored the run."""
    from tessera.retrieval.fusion import fuse

    path = tmp_path / "ties.trec"
    path.write_text("q1 Q0 d10 1 1.0 x\nq1 Q0 d9 2 1.0 x\nq1 Q0 d60 3 0.5 x\nq1 Q0 d6 4 0.5 x\n")
    run = read_trec(path)
    assert [h.doc_id for h in run["q1"]] == ["d9", "d10", "d60", "d6"]  # document id, highest first
    fused = fuse([run, read_trec(path)], "rrf")
    assert [h.doc_id for h in fused["q1"]] == [h.doc_id for h in run["q1"]]
