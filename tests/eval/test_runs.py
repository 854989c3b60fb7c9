from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tessera.eval.runs import read_trec, write_trec
from tessera.retrieval.hits import Hit


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
