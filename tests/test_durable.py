from __future__ import annotations

from pathlib import Path

import pytest

from tessera.durable import JsonLines, new_target
from tessera.errors import TesseraError


def test_json_lines_drop_a_line_cut_off_by_a_crash(tmp_path: Path) -> None:
    journal = JsonLines(tmp_path / "sub" / "rows.jsonl")
    assert journal.read() == []
    journal.append([{"id": 1}, {"id": 2, "text": "é"}])
    journal.append([{"id": 3}])
    assert journal.read() == [{"id": 1}, {"id": 2, "text": "é"}, {"id": 3}]
    journal.path.write_bytes(journal.path.read_bytes()[:-4])  # the last write, interrupted
    assert journal.read() == [{"id": 1}, {"id": 2, "text": "é"}]
    journal.append([{"id": 3}])  # appends after the last whole line
    assert journal.read() == [{"id": 1}, {"id": 2, "text": "é"}, {"id": 3}]
    journal.remove()
    assert not journal.path.exists()


def test_json_lines_name_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": 1}\n[2]\n')
    with pytest.raises(TesseraError, match="expected a JSON object") as info:
        JsonLines(path).read()
    assert (info.value.file, info.value.line) == (str(path), 2)
    path.write_text('{"id": 1}\n{"id": \n')
    with pytest.raises(TesseraError, match="not a JSON line") as info:
        JsonLines(path).read()
    assert info.value.line == 2


def test_outputs_never_replace_the_inputs_or_each_other(tmp_path: Path) -> None:
    from tessera.durable import check_outputs

    run = tmp_path / "a.trec"
    run.write_text("q1 Q0 d1 1 1.0 x\n")
    dataset = tmp_path / "ds"
    dataset.mkdir()
    (dataset / "queries.jsonl").write_text('{"_id": "q1", "text": "wing"}\n')
    with pytest.raises(TesseraError, match="a.trec, field 'run': is the input") as info:
        check_outputs({"run": run}, inputs=[run])
    assert info.value.field == "run"
    with pytest.raises(TesseraError, match="is a file of the input folder"):
        check_outputs({"run": dataset / "queries.jsonl"}, inputs=[dataset])
    with pytest.raises(TesseraError, match="field 'json': is also the run output"):
        check_outputs({"run": tmp_path / "x", "json": tmp_path / "x"})
    # new files beside the inputs, inside an input folder too, and ids that are no paths are fine
    check_outputs(
        {"run": tmp_path / "b.trec", "json": dataset / "scores.json"}, inputs=[run, dataset, "cranfield"]
    )
    assert run.read_text() == "q1 Q0 d1 1 1.0 x\n"


def test_an_output_under_a_file_names_that_file(tmp_path: Path) -> None:
    """Made a folder, the file failed as "[Errno 17] File exists: 'notes.txt'", naming no option."""
    from tessera.durable import check_outputs, new_target

    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(TesseraError, match="field 'json': '.*notes.txt' is a file, not a folder"):
        check_outputs({"json": tmp_path / "notes.txt" / "deeper" / "x.json"})
    with pytest.raises(TesseraError, match="notes.txt' is a file, not a folder"):
        new_target(tmp_path / "notes.txt" / "index", overwrite=False)


def test_an_output_of_another_kind_is_refused_without_suggesting_overwrite(tmp_path: Path) -> None:
    """A file, or a folder of other files, was "already exists (use --overwrite ...)", and
    --overwrite then refused it."""
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "a.txt").write_text("mine")
    for target in (notes, tmp_path / "folder"):
        for overwrite in (False, True):
            with pytest.raises(TesseraError, match="is not a trained model .* choose another output"):
                new_target(target, overwrite, marker=("training.json", "a trained model"))
    assert notes.read_text() == "mine" and (tmp_path / "folder" / "a.txt").read_text() == "mine"
