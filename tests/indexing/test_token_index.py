"""Token index: files and their agreement with the encoder, other faiss kinds, residual
compression, resume after a kill, and clear errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tessera.errors import EncoderError, IndexFormatError, TesseraError
from tessera.indexing.builder import build_index
from tessera.indexing.manifest import Manifest
from tessera.indexing.reindex import reindex
from tessera.indexing.token_backend import TokenBackend, TokenSink
from tessera.models.registry import canonical_spec, load_encoder
from tessera.retrieval.index import Index
from tessera.retrieval.late_interaction import LateInteractionSearch, colbert_rerank
from tests.conftest import kill_then_resume

QUERIES = ["boundary layer transition on a flat plate", "heat transfer at hypersonic speeds"]
TOKEN_FILES = ("tokens.faiss", "token_docs.npy", "doc_offsets.npy", "token_vectors.npy")


def stored(index_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The index's float16 token vectors (as float32) and the per-document token counts."""
    vectors = np.load(index_dir / "token_vectors.npy", allow_pickle=False).astype(np.float32)
    return vectors, np.diff(np.load(index_dir / "doc_offsets.npy", allow_pickle=False))


def sink_build(root: Path, vectors: np.ndarray, lengths: np.ndarray, factory: str, **options) -> Path:
    """A token index's files from given token vectors, in batches of 40 documents, no encoder."""
    root.mkdir()
    sink = TokenSink(vectors.shape[1], factory, {}, **options)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    for start in range(0, len(lengths), 40):
        stop = min(start + 40, len(lengths))
        sink.append(root, [vectors[offsets[i] : offsets[i + 1]] for i in range(start, stop)])
    sink.finish(root, len(lengths))
    return root


def test_files_hold_the_encoders_token_vectors(cranfield_tokens: Path, token_model: Path, cranfield_head):
    manifest = Manifest.read(cranfield_tokens)
    assert (manifest.backend, manifest.factory, manifest.dim) == ("tokens", "Flat", 128)
    assert manifest.encoder == f"colbert:{token_model.resolve()}"
    assert manifest.search_params == {"k_prime": 1000}
    assert set(TOKEN_FILES) <= set(manifest.files)
    assert not any(name.endswith(".partial") for name in os.listdir(cranfield_tokens))

    encoder = load_encoder(manifest.encoder)
    records = [json.loads(line) for line in (cranfield_head / "corpus.jsonl").read_text().splitlines()[:8]]
    expected = encoder.encode_docs([f"{r['title']} {r['text']}".strip() for r in records])
    vectors, lengths = stored(cranfield_tokens)
    assert lengths[:8].tolist() == [len(e) for e in expected]
    np.testing.assert_allclose(vectors[: lengths[:8].sum()], np.concatenate(expected), atol=2e-3)

    token_docs = np.load(cranfield_tokens / "token_docs.npy", allow_pickle=False)
    assert token_docs.dtype == np.int32
    assert token_docs.tolist() == np.repeat(np.arange(manifest.doc_count), lengths).tolist()
    backend = TokenBackend(cranfield_tokens)
    assert backend.token_count == len(vectors) and backend.doc_count == manifest.doc_count
    # Flat keeps the float32 vectors exactly; the float16 copy is within half-precision rounding.
    flat = backend.faiss.index.reconstruct_n(0, 100)
    np.testing.assert_allclose(flat, np.concatenate(expected)[:100], atol=1e-5)
    tokens, counts = backend.doc_tokens(np.array([3, 0]))
    assert counts.tolist() == [lengths[3], lengths[0]]
    np.testing.assert_array_equal(tokens[: lengths[3]], vectors[lengths[:3].sum() : lengths[:4].sum()])


def test_ivf_pq_token_index_ranks_like_flat(cranfield_tokens: Path, tmp_path: Path) -> None:
    vectors, lengths = stored(cranfield_tokens)
    root = sink_build(tmp_path / "ivfpq", vectors, lengths, "IVF64,PQ16")
    assert (root / "tokens.faiss").stat().st_size < (cranfield_tokens / "tokens.faiss").stat().st_size / 8
    encoder = load_encoder(Manifest.read(cranfield_tokens).encoder)
    queries = encoder.encode_queries(QUERIES)
    flat = LateInteractionSearch(TokenBackend(cranfield_tokens), "colbert", 200)
    compressed = LateInteractionSearch(TokenBackend(root, {"nprobe": 16}), "colbert", 200)
    _, flat_ids = flat.search(queries, 10)
    scores, ids = compressed.search(queries, 10)
    for a, b in zip(flat_ids, ids, strict=True):
        assert len(set(a) & set(b)) >= 8  # candidates differ, the exact rerank agrees
    # Reranking reads the same stored vectors, so shared documents score the same.
    flat_scores, _ = flat.search(queries, 10)
    same = flat_ids[0] == ids[0]
    np.testing.assert_allclose(flat_scores[0][same], scores[0][same], rtol=1e-5)


def test_residual_compression_keeps_the_ranking(
    cranfield_tokens: Path, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    vectors, lengths = stored(cranfield_tokens)
    few = int(lengths[:5].sum())  # a few hundred tokens: 64-128 centroids, under 39 tokens each
    sink_build(tmp_path / "few", vectors[:few], lengths[:5], "Flat", doc_vectors="residual:2")
    assert "WARNING clustering" not in capfd.readouterr().err  # faiss' own line, from C
    root = sink_build(tmp_path / "res", vectors, lengths, "Flat", doc_vectors="residual:2")
    assert not (root / "token_vectors.npy").exists()
    residual_bytes = sum(p.stat().st_size for p in root.glob("residual_*.npy"))
    assert residual_bytes < (cranfield_tokens / "token_vectors.npy").stat().st_size / 5
    backend = TokenBackend(root)
    decoded = backend.doc_tokens(np.arange(backend.doc_count))[0]
    cosine = np.sum(decoded * vectors, axis=1)
    assert cosine.mean() > 0.93, cosine.mean()  # measured 0.956 (512 centroids, 2 bits)
    encoder = load_encoder(Manifest.read(cranfield_tokens).encoder)
    everything = np.arange(backend.doc_count)
    for query in encoder.encode_queries(QUERIES):
        exact = colbert_rerank(query, everything, TokenBackend(cranfield_tokens))
        approx = colbert_rerank(query, everything, backend)
        # The untrained projection leaves top scores close together, so compare the top third.
        top = len(everything) // 3
        overlap = set(np.argsort(-exact)[:top]) & set(np.argsort(-approx)[:top])
        assert len(overlap) >= 0.9 * top, len(overlap)


def test_rewind_drops_a_cut_off_batch(cranfield_tokens: Path, tmp_path: Path) -> None:
    vectors, lengths = stored(cranfield_tokens)
    lengths, vectors = lengths[:30], vectors[: lengths[:30].sum()]
    clean = sink_build(tmp_path / "clean", vectors, lengths, "Flat")
    docs = np.split(vectors, np.cumsum(lengths)[:-1])
    root = tmp_path / "cut"
    root.mkdir()
    sink = TokenSink(128, "Flat", {})
    sink.append(root, docs[:20])  # checkpointed: 20 documents
    sink.append(root, docs[20:25])  # written, then killed before the checkpoint
    with (root / TokenSink.TOKENS).open("ab") as handle:  # and half of a third batch's vectors
        handle.write(docs[25].tobytes()[:1000])
    sink.rewind(root, 20)
    assert (root / TokenSink.TOKENS).stat().st_size == lengths[:20].sum() * 128 * 4
    sink.append(root, docs[20:])
    sink.finish(root, 30)
    for name in ("token_docs.npy", "doc_offsets.npy", "token_vectors.npy"):
        assert (root / name).read_bytes() == (clean / name).read_bytes(), name


def test_resume_after_kill_gives_the_identical_index(token_model: Path, cranfield_head, tmp_path: Path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("\n".join((cranfield_head / "corpus.jsonl").read_text().splitlines()[:48]) + "\n")
    encoder = f"colbert:{token_model}"
    args = ["index", str(corpus), "--encoder", encoder, "--batch-size", "4", "--index", "IVF8,Flat"]
    killed = tmp_path / "killed"
    kill_then_resume(args, killed, after=12, total=48)
    clean = build_index(
        corpus, tmp_path / "clean", encoder=encoder, factory="IVF8,Flat", batch_size=4, show_progress=False
    )
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("killed")) == ["killed"]
    resumed_files, clean_files = Manifest.read(killed).files, Manifest.read(clean).files
    for name in (*TOKEN_FILES, "docids.txt"):
        assert resumed_files[name] == clean_files[name], name


def test_bad_specs_and_options_fail_before_encoding(tmp_path: Path, cranfield_head, token_model: Path):
    target, corpus = tmp_path / "idx", cranfield_head / "corpus.jsonl"
    with pytest.raises(EncoderError, match="no such model folder"):
        build_index(corpus, target, encoder=f"colbert:{tmp_path / 'none'}", show_progress=False)
    with pytest.raises(EncoderError, match="names no model folder"):
        build_index(corpus, target, encoder="xtr:", show_progress=False)
    from tessera.models.bundled import bundled_path

    with pytest.raises(EncoderError, match="not a saved multi-vector model") as info:
        load_encoder(f"xtr:{bundled_path('minilm')}")
    assert info.value.file.endswith("config_sentence_transformers.json")
    spec = f"colbert:{token_model}"
    with pytest.raises(TesseraError, match="token indexes take a faiss factory string"):
        build_index(corpus, target, encoder=spec, factory="bebr:2", show_progress=False)
    with pytest.raises(TesseraError, match="residual:BITS"):
        build_index(corpus, target, encoder=spec, doc_vectors="residual:3", show_progress=False)
    with pytest.raises(TesseraError, match="mode must be one of"):
        build_index(corpus, target, encoder=spec, search_params={"mode": "x"}, show_progress=False)
    assert not list(tmp_path.glob("idx*"))
    assert canonical_spec(f"xtr:{os.path.relpath(token_model)}") == f"xtr:{token_model.resolve()}"


def test_inconsistent_token_files_fail_on_load(cranfield_tokens: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(cranfield_tokens, tmp_path / "copy"))
    token_docs = np.load(copy / "token_docs.npy", allow_pickle=False)
    np.save(copy / "token_docs.npy", token_docs[:-5])
    with pytest.raises(IndexFormatError, match="checksum|truncated"):
        Index.load(copy)
    with pytest.raises(IndexFormatError, match="token files disagree on the token count"):
        Index.load(copy, verify=False)


def test_reindex_puts_the_same_tokens_under_another_faiss_kind(
    cranfield_tokens: Path, tmp_path: Path
) -> None:
    ivf = reindex(cranfield_tokens, tmp_path / "ivf", "IVF16,Flat", {"nprobe": 16}, show_progress=False)
    manifest = Manifest.read(ivf)
    assert (manifest.backend, manifest.factory) == ("tokens", "IVF16,Flat")
    assert manifest.search_params == {"k_prime": 1000, "nprobe": 16}
    for name in ("token_docs.npy", "doc_offsets.npy", "token_vectors.npy", "docids.txt"):
        assert (ivf / name).read_bytes() == (cranfield_tokens / name).read_bytes(), name
    for mode in ("colbert", "xtr"):  # all 16 lists probed: the same answers as Flat
        ours = Index.load(ivf, search_params={"mode": mode}).batch_search(QUERIES, k=10)
        flat = Index.load(cranfield_tokens, search_params={"mode": mode}).batch_search(QUERIES, k=10)
        assert [[h.doc_id for h in row] for row in ours] == [[h.doc_id for h in row] for row in flat]
        np.testing.assert_allclose(
            [h.score for row in ours for h in row], [h.score for row in flat for h in row], atol=1e-4
        )
    with pytest.raises(TesseraError, match="reindex reads the vectors of Flat and HNSW indexes, not of"):
        reindex(ivf, tmp_path / "again", "Flat")
    with pytest.raises(TesseraError, match="token indexes take a faiss factory"):
        reindex(cranfield_tokens, tmp_path / "binary", "binary")


def test_k_prime_beyond_the_gpu_limit_searches_a_cpu_copy(cranfield_tokens: Path) -> None:
    # faiss on a GPU returns at most 2048 neighbours; the backend then searches a CPU copy.
    # Pretending the index is on a GPU exercises that branch on any machine.
    backend = TokenBackend(cranfield_tokens)
    queries = np.load(cranfield_tokens / "token_vectors.npy", allow_pickle=False)[:4].astype(np.float32)
    expected = backend.search_tokens(queries, 3000)
    backend.on_gpu = True
    scores, positions = backend.search_tokens(queries, 3000)
    assert backend._cpu is not None and positions.shape == (4, 3000)
    np.testing.assert_array_equal(positions, expected[1])
    np.testing.assert_allclose(scores, expected[0])
