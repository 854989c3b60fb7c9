from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tessera.errors import CorpusError, TesseraError, TesseraWarning
from tessera.indexing.builder import build_index, share
from tessera.indexing.manifest import Manifest
from tests.conftest import kill_then_resume


def corpus_file(tmp_path: Path, lines: list[str], name: str = "c.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def leftovers(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir() if p.name.startswith(target.name))


def cranfield_subset(data_dir: Path, tmp_path: Path, count: int) -> Path:
    lines = (data_dir / "cranfield-beir" / "corpus.jsonl").read_text().splitlines()[:count]
    return corpus_file(tmp_path, lines, "subset.jsonl")


@pytest.mark.parametrize(
    ("lines", "line", "field", "message"),
    [
        (['{"_id": "a", "text": "x"}', '{"_id": "a", "text": "y"}'], 2, "_id", "duplicate document id 'a'"),
        (['{"_id": "a", "text": "x"}', '{"_id": "b"}'], 2, "text", "missing"),
        (['{"_id": "a", "text": "x"}', "{oops"], 2, None, "malformed JSON"),
        # one id a line of docids.txt: every line break str.splitlines knows is refused
        (['{"_id": "a", "text": "x"}', '{"_id": "b\\u2028c", "text": "y"}'], 2, "_id", "U\\+2028"),
        (['{"_id": "a\\nb", "text": "x"}'], 1, "_id", "U\\+000A"),
        (['{"_id": "a\\tb", "text": "x"}'], 1, "_id", "control character"),
    ],
)
def test_bad_input_fails_clearly_and_leaves_nothing(tmp_path, lines, line, field, message) -> None:
    path = corpus_file(tmp_path, lines)
    target = tmp_path / "idx"
    with pytest.raises(CorpusError, match=message) as info:
        build_index(path, target, encoder="bm25", batch_size=1, show_progress=False)
    assert (info.value.file, info.value.line, info.value.field) == (str(path), line, field)
    assert leftovers(target) == []


def test_duplicate_id_error_names_the_first_occurrence(tmp_path: Path) -> None:
    path = corpus_file(
        tmp_path, ['{"_id": "a", "text": "x"}', '{"_id": "b", "text": "y"}', '{"_id": "a", "text": "z"}']
    )
    with pytest.raises(CorpusError, match=rf"first at {path}:1"):
        build_index(path, tmp_path / "idx", encoder="bm25", show_progress=False)


def test_non_utf8_corpus_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(b'{"_id": "a", "text": "ok"}\n{"_id": "b", "text": "\xff"}\n')
    with pytest.raises(CorpusError, match="not valid UTF-8") as info:
        build_index(path, tmp_path / "idx", encoder="bm25", batch_size=1, show_progress=False)
    assert info.value.line == 2
    assert leftovers(tmp_path / "idx") == []


def test_empty_corpus_is_an_error(tmp_path: Path) -> None:
    path = corpus_file(tmp_path, [""])
    with pytest.raises(CorpusError, match="no documents"):
        build_index(path, tmp_path / "idx", encoder="bm25", show_progress=False)
    assert leftovers(tmp_path / "idx") == []


def test_existing_index_is_kept_unless_overwrite(tmp_path: Path) -> None:
    path = corpus_file(tmp_path, ['{"_id": "a", "text": "alpha"}'])
    target = build_index(path, tmp_path / "idx", encoder="bm25", show_progress=False)
    created = Manifest.read(target).created_at
    with pytest.raises(TesseraError, match="already exists"):
        build_index(path, target, encoder="bm25", show_progress=False)
    corpus_file(tmp_path, ['{"_id": "a", "text": "alpha"}', '{"_id": "b", "text": "beta"}'])
    build_index(path, target, encoder="bm25", overwrite=True, show_progress=False)
    assert Manifest.read(target).doc_count == 2
    assert Manifest.read(target).created_at >= created
    assert leftovers(target) == ["idx", "idx.lock"]  # the lock updates hold, which replacing waits for


def test_overwrite_replaces_an_index_never_other_folders_nor_the_corpus(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("my notes about wings")
    with pytest.raises(TesseraError, match="holds the input"):
        build_index(notes, notes, encoder="bm25", overwrite=True, show_progress=False)
    with pytest.raises(TesseraError, match="holds the input"):
        build_index(notes, tmp_path, encoder="bm25", overwrite=True, show_progress=False)
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("not an index")
    with pytest.raises(TesseraError, match="is not a Tessera index"):
        build_index(notes, other, encoder="bm25", overwrite=True, show_progress=False)
    assert (notes / "a.txt").read_text() == "my notes about wings" and (other / "keep.txt").is_file()
    assert leftovers(other) == ["other"]
    (tmp_path / "empty").mkdir()  # an empty folder holds nothing to lose
    built = build_index(notes, tmp_path / "empty", encoder="bm25", overwrite=True, show_progress=False)
    assert Manifest.read(built).doc_count == 1


def test_documents_without_text_are_indexed_with_a_warning(tmp_path: Path) -> None:
    path = corpus_file(tmp_path, ['{"_id": "a", "text": "alpha"}', '{"_id": "b", "title": " ", "text": ""}'])
    with pytest.warns(TesseraWarning, match=rf"1 document has neither title nor text: .*{path}:2"):
        target = build_index(path, tmp_path / "idx", encoder="bm25", show_progress=False)
    assert Manifest.read(target).doc_count == 2  # kept: judgments may name it


def test_unknown_faiss_factory_is_a_clear_error(tmp_path: Path, data_dir: Path) -> None:
    path = cranfield_subset(data_dir, tmp_path, 20)
    with pytest.raises(TesseraError, match="faiss cannot build 'NoSuchIndex'"):
        build_index(path, tmp_path / "idx", encoder="minilm", factory="NoSuchIndex", show_progress=False)
    assert leftovers(tmp_path / "idx") == []


def _rows(index: Path) -> list[tuple]:
    with sqlite3.connect(index / "docstore.sqlite") as db:
        return db.execute("SELECT ordinal, id, title, text FROM docs ORDER BY ordinal").fetchall()


def test_resume_after_kill_gives_the_identical_index(tmp_path: Path, data_dir: Path) -> None:
    corpus = cranfield_subset(data_dir, tmp_path, 120)
    args = ["index", str(corpus), "--encoder", "minilm", "--batch-size", "16"]
    killed = tmp_path / "killed"
    kill_then_resume(args, killed, after=32, total=120)
    clean = build_index(corpus, tmp_path / "clean", encoder="minilm", batch_size=16, show_progress=False)

    assert leftovers(killed) == ["killed"]
    resumed_manifest, clean_manifest = Manifest.read(killed), Manifest.read(clean)
    for name in ("vectors.faiss", "docids.txt"):
        assert resumed_manifest.files[name] == clean_manifest.files[name], name
    assert _rows(killed) == _rows(clean)
    assert resumed_manifest.doc_count == 120


def test_the_truncation_share_never_rounds_documents_away() -> None:
    assert [share(23, 5999), share(48, 150), share(3, 50), share(150, 150)] == ["0.4%", "32%", "6.0%", "100%"]
