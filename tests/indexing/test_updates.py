"""Adding and deleting documents (indexing/updates.py) on real Cranfield documents: an updated
index answers like a build of the final corpus."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import faiss
import numpy as np
import pytest

from tessera.errors import CorpusError, IndexFormatError, TesseraError
from tessera.indexing.builder import build_index
from tessera.indexing.docstore import DocStore
from tessera.indexing.manifest import Manifest
from tessera.indexing.reindex import reindex
from tessera.indexing.updates import delete_documents
from tessera.retrieval.index import Index
from tests.conftest import run_cli, update_corpora

BASE, ADDED = 200, 60


@pytest.fixture(scope="module")
def corpora(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Base: Cranfield's first 200 documents; more: the next 60; gone: 20 base and 2 added ids."""
    return update_corpora(
        data_dir, tmp_path_factory.mktemp("update-corpora"), BASE, ADDED, (3, 30), queries=25
    )


@pytest.fixture(scope="module")
def base_flat(corpora, tmp_path_factory) -> Path:
    return build_index(corpora["base"], tmp_path_factory.mktemp("base") / "flat", show_progress=False)


@pytest.fixture(scope="module")
def final_flat(corpora, tmp_path_factory) -> Path:
    return build_index(corpora["final"], tmp_path_factory.mktemp("final") / "flat", show_progress=False)


def copy_of(index: Path, tmp_path: Path, name: str = "idx") -> Path:
    return Path(shutil.copytree(index, tmp_path / name))


def updated(index: Path, corpora: dict) -> Index:
    opened = Index.load(index)
    assert opened.add(corpora["more"]) == ADDED
    assert opened.delete(corpora["gone"]) == len(corpora["gone"])
    return opened


def results(index: Index, queries: list[str], k: int = 10) -> tuple[list[list[str]], np.ndarray]:
    hits = index.batch_search(queries, k=k)
    return [[h.doc_id for h in row] for row in hits], np.array([[h.score for h in row] for row in hits])


def assert_same_state(index: Path, rebuilt: Path) -> None:
    """Same documents in the same order; the manifest holds the right count and checksums."""
    manifest = Manifest.read(index)  # verifies every checksum
    assert manifest.doc_count == Manifest.read(rebuilt).doc_count
    ours, theirs = (
        DocStore(index / DocStore.FILE, readonly=True),
        DocStore(rebuilt / DocStore.FILE, readonly=True),
    )
    assert list(ours.documents()) == list(theirs.documents())
    ours.close(), theirs.close()


def test_flat_add_then_delete_equals_a_rebuild(base_flat, final_flat, corpora, tmp_path) -> None:
    index = updated(copy_of(base_flat, tmp_path), corpora)
    rebuilt = Index.load(final_flat, encoder=index.encoder)
    ids, scores = results(index, corpora["queries"], k=20)
    expected_ids, expected_scores = results(rebuilt, corpora["queries"], k=20)
    assert ids == expected_ids
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    assert (index.root / "docids.txt").read_text() == (final_flat / "docids.txt").read_text()
    assert_same_state(index.root, final_flat)
    assert not set(corpora["gone"]) & {d for row in ids for d in row}


def test_ivf_add_then_delete_equals_a_rebuild_at_full_nprobe(
    base_flat, final_flat, corpora, tmp_path
) -> None:
    ivf = reindex(base_flat, tmp_path / "ivf", "IVF8,Flat", show_progress=False)
    params = Manifest.read(ivf).search_params
    index = updated(ivf, corpora)
    assert Manifest.read(ivf).search_params == params  # the tuned default is kept
    rebuilt = reindex(final_flat, tmp_path / "rebuilt", "IVF8,Flat", show_progress=False)
    full = {"nprobe": 8}
    ids, scores = results(Index.load(ivf, encoder=index.encoder, search_params=full), corpora["queries"])
    expected_ids, expected_scores = results(
        Index.load(rebuilt, encoder=index.encoder, search_params=full), corpora["queries"]
    )
    assert ids == expected_ids
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    # Removed vectors are gone from the lists and the survivors' labels are 0..n-1 again.
    stored = faiss.read_index(str(ivf / "vectors.faiss"))
    assert stored.ntotal == BASE + ADDED - len(corpora["gone"])
    assert_same_state(ivf, final_flat)


def test_hnsw_keeps_tombstones_until_compact(base_flat, final_flat, corpora, tmp_path) -> None:
    params = {"efSearch": 256}  # over 238 documents: exhaustive, so results compare exactly
    hnsw = reindex(base_flat, tmp_path / "hnsw", "HNSW32", params, show_progress=False)
    index = updated(hnsw, corpora)
    manifest = Manifest.read(hnsw)
    assert (manifest.tombstones, manifest.doc_count) == (
        len(corpora["gone"]),
        BASE + ADDED - len(corpora["gone"]),
    )
    assert len((hnsw / "docids.txt").read_text().splitlines()) == BASE + ADDED
    assert np.load(hnsw / "tombstones.npy").dtype == np.int64
    flat = Index.load(final_flat, encoder=index.encoder)
    expected_ids, expected_scores = results(flat, corpora["queries"], k=20)
    ids, scores = results(index, corpora["queries"], k=20)
    assert ids == expected_ids
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    with pytest.raises(TesseraError, match="run `tessera compact` first"):
        reindex(hnsw, tmp_path / "again", "Flat", show_progress=False)

    assert index.compact() == len(corpora["gone"])
    manifest = Manifest.read(hnsw)
    assert (manifest.tombstones, manifest.search_params) == (0, params) and not (
        hnsw / "tombstones.npy"
    ).exists()
    assert (hnsw / "docids.txt").read_text() == (final_flat / "docids.txt").read_text()
    ids, scores = results(index, corpora["queries"], k=20)
    assert ids == expected_ids
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    assert_same_state(hnsw, final_flat)


def test_binary_codes_add_then_delete_equals_a_rebuild(base_flat, final_flat, corpora, tmp_path) -> None:
    binary = reindex(base_flat, tmp_path / "binary", "binary", show_progress=False)
    index = updated(binary, corpora)
    rebuilt = Index.load(
        reindex(final_flat, tmp_path / "rebuilt", "binary", show_progress=False), encoder=index.encoder
    )
    assert results(index, corpora["queries"], k=20)[0] == results(rebuilt, corpora["queries"], k=20)[0]
    assert_same_state(binary, final_flat)


def test_bm25_add_then_delete_equals_a_rebuild(corpora, tmp_path) -> None:
    bm25 = build_index(corpora["base"], tmp_path / "bm25", encoder="bm25", show_progress=False)
    index = updated(bm25, corpora)
    rebuilt = build_index(corpora["final"], tmp_path / "rebuilt", encoder="bm25", show_progress=False)
    ids, scores = results(index, corpora["queries"], k=20)
    expected_ids, expected_scores = results(Index.load(rebuilt), corpora["queries"], k=20)
    assert ids == expected_ids
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    assert_same_state(bm25, rebuilt)
    assert index.compact() == 0


def leftovers(index: Path) -> list[str]:
    return sorted(p.name for p in index.parent.iterdir() if p.name.startswith(index.name))


# HNSW's rebuild-from-survivors path also runs in test_token_updates.py (default run).
@pytest.mark.parametrize("factory", ["Flat", pytest.param("HNSW16", marks=pytest.mark.slow)])
def test_chunked_add_then_delete_equals_a_rebuild(factory, data_dir, tmp_path) -> None:
    """Passages of added documents are cut as the build cuts them; a deleted document loses
    every passage (HNSW, which cannot remove vectors, is rebuilt: no tombstones). Fewer
    documents than the other tests: each is several passages to encode."""
    corpora = update_corpora(data_dir, tmp_path, 80, 20, (3, 10), queries=25)
    chunk = "48:8"  # Cranfield abstracts run to a few hundred tokens: several passages each
    index = build_index(corpora["base"], tmp_path / "idx", factory=factory, chunk=chunk, show_progress=False)
    rebuilt = build_index(
        corpora["final"], tmp_path / "final", factory=factory, chunk=chunk, show_progress=False
    )
    opened = Index.load(index)
    assert opened.add(corpora["more"]) == 20
    assert opened.delete(corpora["gone"]) == len(corpora["gone"])
    manifest, expected = Manifest.read(index), Manifest.read(rebuilt)
    assert manifest.tombstones == 0 and manifest.chunking == expected.chunking
    assert manifest.chunking["passages"] > 2 * manifest.doc_count
    np.testing.assert_array_equal(np.load(index / "passages.npy"), np.load(rebuilt / "passages.npy"))
    params = {"efSearch": 512} if factory != "Flat" else {}
    fresh = Index.load(index, encoder=opened.encoder, search_params=params)
    theirs = Index.load(rebuilt, encoder=opened.encoder, search_params=params)
    ids, scores = results(fresh, corpora["queries"])
    expected_ids, expected_scores = results(theirs, corpora["queries"])
    assert ids == expected_ids
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    best = fresh.search(corpora["queries"][0], k=1, with_text=True)[0]
    other = theirs.search(corpora["queries"][0], k=1, with_text=True)[0]
    assert (best.doc_id, best.offsets, best.passage) == (other.doc_id, other.offsets, other.passage)
    assert_same_state(index, rebuilt)


def test_bad_updates_fail_clearly_and_change_nothing(base_flat, corpora, tmp_path) -> None:
    index = copy_of(base_flat, tmp_path)
    before = (index / "manifest.json").read_bytes()
    base_lines = corpora["base"].read_text().splitlines()
    dup = tmp_path / "dup.jsonl"
    dup.write_text(corpora["more"].read_text().splitlines()[0] + "\n" + base_lines[4] + "\n")
    with pytest.raises(
        CorpusError, match=rf"document id '5' is already in the index \(from {corpora['base']}:5\)"
    ) as info:
        Index.load(index).add(dup)
    assert (info.value.file, info.value.line) == (str(dup), 2)
    twice = tmp_path / "twice.jsonl"
    more = corpora["more"].read_text().splitlines()
    twice.write_text("\n".join([more[0], more[1], more[0]]) + "\n")
    with pytest.raises(CorpusError, match=rf"duplicate document id '\w+' \(first at {twice}:1\)") as info:
        Index.load(index).add(twice)
    assert (info.value.file, info.value.line) == (str(twice), 3)

    with pytest.raises(TesseraError, match="unknown document id 'nope' \\(and 1 more\\)") as info:
        delete_documents(index, ["1", "nope", "nope2"])
    assert info.value.field == "id"
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("1\n\nmissing\n")
    result = run_cli("delete", str(index), "--ids-file", str(ids_file), check=False)
    assert (
        result.returncode == 1 and f"{ids_file}:3, field 'id': unknown document id 'missing'" in result.stderr
    )
    with pytest.raises(TesseraError, match="would leave the index empty"):
        delete_documents(index, [json.loads(line)["_id"] for line in base_lines])
    assert (index / "manifest.json").read_bytes() == before
    assert leftovers(index) == ["idx", "idx.lock"]
    assert len(Index.load(index)) == BASE

    other = copy_of(base_flat, tmp_path, "unknown-backend")
    manifest = json.loads((other / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps({**manifest, "backend": "striped"}))
    with pytest.raises(IndexFormatError, match="unknown backend 'striped'") as info:
        delete_documents(other, ["1"])
    assert info.value.field == "backend"


def test_an_id_added_from_a_file_now_gone_is_already_in_the_index(base_flat, corpora, tmp_path) -> None:
    """A store's or a sync's corpus file is removed after its add: no error names it later."""
    index = Index.load(copy_of(base_flat, tmp_path))
    line = corpora["more"].read_text().splitlines()[0]
    from_memory = tmp_path / ".store.add-1.jsonl"
    from_memory.write_text(line + "\n")
    index.add(from_memory)
    from_memory.unlink()
    again = tmp_path / "again.jsonl"
    again.write_text(line + "\n")
    doc_id = json.loads(line)["_id"]
    with pytest.raises(
        CorpusError, match=rf"^{again}:1, field '_id': document id '{doc_id}' is already in the index$"
    ):
        index.add(again)


def test_a_build_replacing_an_index_publishes_after_a_running_update(base_flat, corpora, tmp_path) -> None:
    """`index --overwrite` published while an `add` ran: the add then finished on the rebuilt
    files, a manifest of 500 documents over 310 vectors that no search could open."""
    from tessera.indexing import staging

    index = copy_of(base_flat, tmp_path)
    holding, release = threading.Event(), threading.Event()

    def update() -> None:  # what an update holds from reading the index to publishing its own
        with staging.locked(index):
            holding.set()
            release.wait(60)

    updater = threading.Thread(target=update)
    updater.start()
    holding.wait()
    builder = threading.Thread(
        target=lambda: build_index(corpora["more"], index, overwrite=True, show_progress=False)
    )
    builder.start()
    while not any((stage / "manifest.json").exists() for stage in tmp_path.glob("idx.tmp-*")):
        builder.join(0.1)  # built and checksummed: only the publish is left
    builder.join(1.0)
    assert builder.is_alive() and len(Index.load(index)) == BASE  # waiting for the update to publish
    release.set()
    updater.join()
    builder.join()
    assert len(Index.load(index)) == ADDED and Manifest.read(index).doc_count == ADDED


def test_an_interrupted_update_leaves_the_old_index(base_flat, corpora, tmp_path, monkeypatch) -> None:
    index = copy_of(base_flat, tmp_path)
    before = {p.name: p.read_bytes() for p in index.iterdir()}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("tessera.indexing.updates._drop_labels", interrupted)
    with pytest.raises(KeyboardInterrupt):
        delete_documents(index, ["1"])
    assert {p.name: p.read_bytes() for p in index.iterdir()} == before
    assert leftovers(index) == ["idx", "idx.lock"]


def test_an_update_keeps_an_interrupted_build_that_can_resume(base_flat, corpora, tmp_path) -> None:
    """An update's publish removed every dead writer's staging folder, an `index --overwrite`
    its user meant to run again among them; a killed update's folder (not resumable) still goes."""
    index = copy_of(base_flat, tmp_path)
    dead = 2**22 + 17  # above Linux's largest pid_max: no such process
    build = tmp_path / f"idx.tmp-{dead}"
    build.mkdir()
    (build / "progress.json").write_text('{"fingerprint": "x", "done": 64}')
    update = tmp_path / f"idx.tmp-{dead + 1}"
    update.mkdir()
    (update / "manifest.json").write_text("{}")
    delete_documents(index, ["1"])
    assert build.is_dir() and not update.exists()


def test_readers_keep_their_version_and_never_see_a_mix(base_flat, corpora, tmp_path) -> None:
    index = copy_of(base_flat, tmp_path)
    old = Index.load(index)
    encoder = old.encoder
    query = corpora["queries"][0]
    first = old.search(query, k=5, with_text=True)
    seen: list[tuple[int, tuple[str, ...]]] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                reader = Index.load(index, encoder=encoder)  # verifies every checksum
                seen.append((len(reader), tuple(h.doc_id for h in reader.search(query, k=5))))
                reader.close()
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    gone = [h.doc_id for h in first[:5]]
    for doc_id in gone:
        while len(seen) < 2 and not failures:  # let the reader open versions as they change
            stop.wait(0.01)
        seen_before = len(seen)
        delete_documents(index, [doc_id])
        while len(seen) == seen_before and not failures:
            stop.wait(0.01)
    stop.set()
    thread.join()
    assert not failures, failures
    assert len({count for count, _ in seen}) >= 3
    # Each version (by document count) always gave one answer, without the ids it had deleted.
    answers: dict[int, set] = {}
    for count, ids in seen:
        answers.setdefault(count, set()).add(ids)
        assert not set(gone[: BASE - count]) & set(ids)
    assert all(len(a) == 1 for a in answers.values())
    # The index opened before the updates still searches its own version, text included.
    assert [(h.doc_id, h.text) for h in old.search(query, k=5, with_text=True)] == [
        (h.doc_id, h.text) for h in first
    ]
    assert len(Index.load(index, encoder=encoder)) == BASE - 5


def said(*args: str) -> str:
    """The command's output as one line (rich wraps long paths)."""
    return " ".join(run_cli(*args).stdout.split())


def test_add_delete_compact_through_the_cli(base_flat, corpora, tmp_path) -> None:
    bm25 = build_index(corpora["base"], tmp_path / "bm25", encoder="bm25", show_progress=False)
    assert f"added {ADDED} documents" in said("add", str(bm25), str(corpora["more"]))
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(corpora["gone"][2:]) + "\n")
    assert "deleted 2 documents" in said("delete", str(bm25), *corpora["gone"][:2])
    assert f"deleted {len(corpora['gone']) - 2} documents" in said(
        "delete", str(bm25), "--ids-file", str(ids_file)
    )
    assert len(Index.load(bm25)) == BASE + ADDED - len(corpora["gone"])
    result = run_cli("delete", str(bm25), corpora["gone"][0], check=False)
    assert result.returncode == 1 and f"unknown document id '{corpora['gone'][0]}'" in result.stderr

    hnsw = reindex(base_flat, tmp_path / "hnsw", "HNSW32", show_progress=False)
    run_cli("delete", str(hnsw), "1", "2")
    assert Manifest.read(hnsw).tombstones == 2
    assert "2 tombstoned vectors dropped" in said("compact", str(hnsw))
    assert Manifest.read(hnsw).tombstones == 0 and Manifest.read(hnsw).doc_count == BASE - 2
