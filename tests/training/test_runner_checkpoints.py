"""Resuming a training: only from a checkpoint the trainer finished writing."""

from __future__ import annotations

from pathlib import Path

from tessera.training.runner import last_complete_checkpoint


def test_a_checkpoint_cut_off_mid_write_is_dropped_not_resumed(tmp_path: Path) -> None:
    assert last_complete_checkpoint(tmp_path) is None
    for step, complete in ((10, True), (20, True), (30, False), (100, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"x")
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-notes").mkdir()
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-20")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint-10",
        "checkpoint-20",
        "checkpoint-notes",
    ]
