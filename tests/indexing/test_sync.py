"""`tessera sync`: an index brought up to date with its corpus equals a build of the corpus as it
is now; unchanged documents are not re-encoded, a second sync does nothing, bad cases are refused."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tessera.data import files
from tessera.errors import CorpusError, TesseraError
from tessera.indexing.builder import build_index
from tessera.indexing.manifest import Manifest
from tessera.indexing.sync import sync_index
from tessera.retrieval.index import Index
from tests.conftest import run_cli

QUERIES = ["boundary layer in shear flow", "wing in a propeller slipstream", "heat transfer at high speed"]


def notes(cranfield_docs: dict[str, dict], folder: Path, count: int = 24) -> Path:
    """Cranfield abstracts as a folder of notes: Markdown with a title heading, or plain text."""
    folder.mkdir()
    for n, (doc_id, doc) in enumerate(list(cranfield_docs.items())[:count]):
        if n % 2:
            (folder / f"{doc_id}.md").write_text(f"# {' '.join(doc['title'].split())}\n\n{doc['text']}\n")
        else:
            (folder / f"{doc_id}.txt").write_text(doc["text"])
    return folder


def ranked(index: Index) -> list[list[tuple[str, float]]]:
    return [[(h.doc_id, round(h.score, 4)) for h in hits] for hits in index.batch_search(QUERIES, 10)]


@pytest.mark.parametrize("encoder", ["bm25", "minilm"])
def test_sync_equals_a_build_of_the_corpus_as_it_is_now(
    cranfield_docs: dict[str, dict], tmp_path: Path, encoder: str
) -> None:
    folder = notes(cranfield_docs, tmp_path / "notes")
    settle(*folder.iterdir())
    index_dir = build_index(folder, tmp_path / "idx", encoder, show_progress=False)
    edited = folder / "2.md"
    edited.write_text(edited.read_text() + "\nA later note on slipstream effects at high speed.\n")
    (folder / "5.txt").unlink()
    extra = list(cranfield_docs.items())[30]
    (folder / "added.txt").write_text(extra[1]["text"])
    settle(edited, folder / "added.txt", ago=-60)  # modified too recently to get stamps
    plan = sync_index(index_dir, folder, dry_run=True)
    assert (plan.added, plan.changed, plan.deleted, plan.unchanged) == (["added"], ["2"], ["5"], 22)
    assert Manifest.read(index_dir).doc_count == 24  # a dry run changes nothing

    summary = {"added": 1, "changed": 1, "deleted": 1, "unchanged": 22, "unread": 22}
    assert sync_index(index_dir, folder).summary == summary
    fresh = Index.load(build_index(folder, tmp_path / "fresh", encoder, show_progress=False))
    synced = Index.load(index_dir)
    assert sorted(synced.docstore.ids()) == sorted(fresh.docstore.ids()) and len(synced) == 24
    assert ranked(synced) == ranked(fresh)
    assert synced.document("2").text.endswith("slipstream effects at high speed.")

    checksum = (index_dir / "manifest.json").read_bytes()
    summary = {"added": 0, "changed": 0, "deleted": 0, "unchanged": 24, "unread": 22}
    assert synced.sync(folder).summary == summary  # the two without stamps are read again
    assert (index_dir / "manifest.json").read_bytes() == checksum  # nothing to do: nothing published


def test_an_index_whose_every_document_changed_says_rebuild(cranfield_docs: dict[str, dict], tmp_path: Path):
    report = tmp_path / "report.txt"
    original = next(iter(cranfield_docs.values()))["text"].strip()
    report.write_text(original)
    index_dir = build_index(report, tmp_path / "idx", "bm25", show_progress=False)
    report.write_text(original + " revised")
    for dry_run in (True, False):  # a dry run promises only what the sync will do
        with pytest.raises(TesseraError, match="every document changed or went: rebuild"):
            sync_index(index_dir, report, dry_run=dry_run)
    assert Index.load(index_dir).document("report").text == original  # untouched


def test_a_repeated_id_is_refused_where_it_repeats(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"_id": "a", "text": "boundary layer"}\n{"_id": "b", "text": "shock wave"}\n')
    index_dir = build_index(corpus, tmp_path / "idx", "bm25", show_progress=False)
    corpus.write_text('{"_id": "a", "text": "boundary layer"}\n{"_id": "a", "text": "shock wave"}\n')
    with pytest.raises(CorpusError, match="document id 'a' repeated") as info:
        sync_index(index_dir, corpus)
    assert (info.value.file, info.value.line) == (str(corpus), 2)
    assert not list(tmp_path.glob(".idx.sync-*"))  # the pending files are gone
    # a sync killed before its cleanup left full copies of documents beside the index for good:
    # the next sync removes those of processes no longer running, never a running one's
    dead = 2**22 + 17  # above Linux's largest pid_max: no such process
    abandoned = tmp_path / f".idx.sync-added-{dead}-x1.jsonl"
    running = tmp_path / f".idx.sync-changed-{os.getppid()}-x2.jsonl"
    for path in (abandoned, running):
        path.write_text('{"_id": "a", "text": "copy"}\n')
    corpus.write_text('{"_id": "a", "text": "boundary layer"}\n{"_id": "b", "text": "shock wave"}\n')
    sync_index(index_dir, corpus)
    assert not abandoned.exists() and running.exists()


def test_cli_sync_prints_the_plan(cranfield_docs: dict[str, dict], tmp_path: Path) -> None:
    folder = notes(cranfield_docs, tmp_path / "notes", 6)
    settle(*folder.iterdir())
    index_dir = tmp_path / "idx"
    run_cli("index", str(folder), "-o", str(index_dir), "--encoder", "bm25")
    (folder / "4.md").unlink()
    dry = run_cli("sync", str(index_dir), str(folder), "--dry-run", "--json")
    assert json.loads(dry.stdout) == {
        "added": [],
        "changed": [],
        "deleted": ["4"],
        "unchanged": 5,
        "unread": 5,
    }
    done = run_cli("sync", str(index_dir), str(folder))
    assert "deleted 1" in done.stdout and len(Index.load(index_dir)) == 5
    assert "(5 files not read: size and time as when indexed)" in " ".join(done.stdout.split())  # rich wraps


def settle(*paths: Path, ago: float = 3600) -> None:
    """Modification times `ago` seconds back: files read afterwards are settled and get stamps."""
    past = time.time_ns() - int(ago * 1e9)
    for path in paths:
        os.utime(path, ns=(past, past))


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files read (parsed) from now on."""
    names: list[str] = []
    extract = files.extract
    monkeypatch.setattr(files, "extract", lambda path: names.append(path.name) or extract(path))
    return names


def test_sync_reads_only_files_whose_size_or_time_changed(cranfield_docs, tmp_path: Path, reads) -> None:
    folder = notes(cranfield_docs, tmp_path / "notes", 8)
    settle(*folder.iterdir())
    index_dir = build_index(folder, tmp_path / "idx", "bm25", show_progress=False)
    reads.clear()
    unchanged = {"added": 0, "changed": 0, "deleted": 0, "unchanged": 8, "unread": 8}
    assert sync_index(index_dir, folder).summary == unchanged and reads == []

    edited = folder / "2.md"
    edited.write_text(edited.read_text() + "\nA later note on slipstream effects.\n")
    settle(edited, ago=1800)
    (folder / "added.txt").write_text("Heat transfer at hypersonic speed.")
    settle(folder / "added.txt", ago=-60)  # modified too recently for a stamp (its clock is ahead)
    plan = sync_index(index_dir, folder)
    assert (plan.added, plan.changed, plan.unchanged, plan.unread) == (["added"], ["2"], 7, 7)
    assert sorted(reads) == ["2.md", "added.txt"]
    assert Index.load(index_dir).document("2").text.endswith("slipstream effects.")

    reads.clear()  # the edited file's new stamp was stored; the recent one had none to store
    assert sync_index(index_dir, folder).summary == {**unchanged, "unchanged": 9} and reads == ["added.txt"]


def test_an_edit_that_keeps_size_and_time_is_found_by_reread_or_when_it_came_too_soon(
    cranfield_docs, tmp_path: Path, reads
) -> None:
    folder = notes(cranfield_docs, tmp_path / "notes", 4)
    settle(*folder.glob("*.txt"))  # 1.txt and 3.txt settled
    settle(*folder.glob("*.md"), ago=-60)  # 2.md and 4.md modified too recently when read
    index_dir = build_index(folder, tmp_path / "idx", "bm25", show_progress=False)
    for name in ("1.txt", "2.md"):  # one letter changed, size and nanosecond time put back
        path, before = folder / name, (folder / name).stat()
        path.write_text(path.read_text().replace("the", "THE", 1))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    plan = sync_index(index_dir, folder, dry_run=True)
    assert (plan.changed, plan.unread) == (["2"], 2)  # 1.txt passes rsync's quick check, as with rsync
    assert sync_index(index_dir, folder, dry_run=True, reread=True).changed == ["1", "2"]
    assert json.loads(run_cli("sync", str(index_dir), str(folder), "--reread", "--json").stdout)[
        "changed"
    ] == [
        "1",
        "2",
    ]
    assert Index.load(index_dir).document("1").text.count("THE") == 1


def test_added_documents_are_named_by_the_corpus_line_they_came_from(tmp_path: Path) -> None:
    """The empty-document warning (and the doc store's record of where a document came from)
    named the sync's pending copy, deleted when it ends, at that copy's line."""
    corpus = tmp_path / "c.jsonl"
    lines = ['{"_id": "a", "text": "boundary layer"}', '{"_id": "b", "text": "shock wave"}']
    corpus.write_text("\n".join(lines) + "\n")
    index_dir = build_index(corpus, tmp_path / "idx", "bm25", show_progress=False)
    corpus.write_text("\n".join([*lines, '{"_id": "c", "text": "heat"}', '{"_id": "e", "text": ""}']) + "\n")
    with pytest.warns(UserWarning, match=rf"1 document has neither title nor text: .*\(first: {corpus}:4\)"):
        plan = sync_index(index_dir, corpus)
    assert plan.added == ["c", "e"] and plan.origins == {"c": (str(corpus), 3), "e": (str(corpus), 4)}
    again = tmp_path / "again.jsonl"
    again.write_text('{"_id": "c", "text": "heat"}\n')
    with pytest.raises(CorpusError, match=rf"document id 'c' is already in the index \(from {corpus}:3\)"):
        Index.load(index_dir).add(again)


def test_a_damaged_index_is_named_even_when_nothing_changed(tmp_path: Path) -> None:
    """A sync with nothing to change said "synced ... unchanged 2" of an index missing a file, and
    one of an index whose doc store had a byte flipped failed in SQLite's words, with a traceback."""
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"_id": "a", "text": "boundary layer"}\n{"_id": "b", "text": "shock wave"}\n')
    index_dir = build_index(corpus, tmp_path / "idx", "bm25", show_progress=False)
    store = index_dir / "docstore.sqlite"
    damaged = bytearray(store.read_bytes())
    damaged[-5] ^= 0x20
    store.write_bytes(bytes(damaged))
    for dry_run in (True, False):
        with pytest.raises(TesseraError, match="checksum does not match the manifest") as info:
            sync_index(index_dir, corpus, dry_run=dry_run)
        assert info.value.file == str(store)
    failed = run_cli("sync", str(index_dir), str(corpus), check=False)
    assert failed.returncode == 1 and "docstore.sqlite" in failed.stderr and "Traceback" not in failed.stderr
