"""JPQ on a small real index: exact centroid write-back, one step that helps, a loadable output."""

from __future__ import annotations

import itertools
import json
import os
import shutil
from pathlib import Path

import faiss
import numpy as np
import pytest
import torch

from tessera.errors import TesseraError
from tessera.indexing.builder import build_index
from tessera.indexing.faiss_backend import build_faiss_index
from tessera.indexing.manifest import Manifest, sha256_file
from tessera.retrieval.index import Index
from tessera.training.jpq import (
    ENCODER_DIR,
    JPQTrainer,
    group_pairs,
    load_pq_index,
    read_centroids,
    train_jpq,
    unpack_codes,
    write_centroids,
)
from tessera.training.pairs import qrels_pairs

QUERIES = [
    "what similarity laws must be obeyed when constructing aeroelastic models",
    "boundary layer transition on a flat plate",
    "heat transfer at hypersonic speeds",
]
DOCS = 300
TRAIN = {"lr_encoder": 1e-4, "lr_centroids": 1e-3, "negatives": 20}


@pytest.fixture(scope="module")
def cranfield() -> Path:
    folder = Path(os.environ["TESSERA_DATA_DIR"]) / "cranfield-beir"
    if not (folder / "corpus.jsonl").is_file():
        pytest.skip(f"cranfield-beir not found in {folder.parent}")
    return folder


@pytest.fixture(scope="module")
def flat_index(cranfield: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MiniLM vectors of 300 Cranfield documents, bodies cut to 40 words so encoding takes seconds."""
    root = tmp_path_factory.mktemp("jpq")
    with (cranfield / "corpus.jsonl").open() as source, (root / "corpus.jsonl").open("w") as sink:
        for line in itertools.islice(source, DOCS):
            record = json.loads(line)
            record["text"] = " ".join(record["text"].split()[:40])
            sink.write(json.dumps(record) + "\n")
    return build_index(root / "corpus.jsonl", root / "flat", factory="Flat", show_progress=False)


def _derive(flat: Path, target: Path, index: faiss.Index, factory: str) -> Path:
    """The flat index's directory with `index` as its vectors, as the builder would record it."""
    shutil.copytree(flat, target)
    faiss.write_index(index, str(target / "vectors.faiss"))
    manifest = Manifest.read(target, verify=False)
    manifest.factory = factory
    manifest.record_files(target)
    manifest.write(target)
    return target


def _vectors(flat: Path) -> np.ndarray:
    return faiss.read_index(str(flat / "vectors.faiss")).reconstruct_n(0, DOCS)


@pytest.fixture(scope="module")
def pq_index(flat_index: Path) -> Path:
    """6 bits per code, so unpacking the codes matters."""
    index = build_faiss_index(_vectors(flat_index), "PQ8x6")
    return _derive(flat_index, flat_index.with_name("pq"), index, "PQ8x6")


@pytest.fixture(scope="module")
def opq_index(flat_index: Path) -> Path:
    """OPQ with a random rotation: faiss' OPQ training needs more documents than dimensions (and minutes)."""
    vectors = _vectors(flat_index)
    rotation, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((384, 384)))
    opq = faiss.OPQMatrix(384, 8)
    faiss.copy_array_to_vector(rotation.astype(np.float32).ravel(), opq.A)
    opq.is_trained = opq.is_orthonormal = True
    pq = faiss.IndexPQ(384, 8, 6, faiss.METRIC_INNER_PRODUCT)
    pq.train(opq.apply(vectors))
    index = faiss.IndexPreTransform(opq, pq)
    index.add(vectors)
    return _derive(flat_index, flat_index.with_name("opq"), index, "OPQ8,PQ8x6")


def _trainer(root: Path, cranfield: Path) -> tuple[JPQTrainer, list]:
    from sentence_transformers import SentenceTransformer

    from tessera.data.datasets import load_eval_dataset
    from tessera.models.bundled import bundled_path

    torch.manual_seed(0)
    trainer = JPQTrainer(
        SentenceTransformer(str(bundled_path("minilm"))), load_pq_index(root, Manifest.read(root)), **TRAIN
    )
    doc_ids = (root / "docids.txt").read_text().splitlines()
    queries = group_pairs(qrels_pairs(load_eval_dataset(cranfield, "train")), doc_ids)
    return trainer, queries[:8]


def test_codes_unpack_like_faiss_decodes() -> None:
    rng = np.random.default_rng(0)
    data = rng.standard_normal((600, 24)).astype(np.float32)
    for nbits in (4, 6, 8):
        index = faiss.IndexPQ(24, 6, nbits, faiss.METRIC_INNER_PRODUCT)
        index.train(data)
        index.add(data[:50])
        raw = faiss.vector_to_array(index.codes).reshape(50, index.pq.code_size)
        codes = unpack_codes(raw, 6, nbits)
        rebuilt = read_centroids(index.pq)[np.arange(6), codes].reshape(50, 24)
        np.testing.assert_array_equal(rebuilt, index.pq.decode(raw))


@pytest.mark.parametrize("kind", ["pq_index", "opq_index"])
def test_centroid_write_back_round_trip_is_exact(kind: str, request, tmp_path: Path) -> None:
    root = request.getfixturevalue(kind)
    loaded = load_pq_index(root, Manifest.read(root))
    queries = np.random.default_rng(1).standard_normal((5, 384)).astype(np.float32)
    before = loaded.index.search(queries, 20)
    raw = faiss.vector_to_array(loaded.pq.centroids)
    faiss.copy_array_to_vector(raw, loaded.pq.centroids)
    write_centroids(loaded.pq, read_centroids(loaded.pq))
    assert faiss.vector_to_array(loaded.pq.centroids).tobytes() == raw.tobytes()
    faiss.write_index(loaded.index, str(tmp_path / "copy.faiss"))
    assert sha256_file(tmp_path / "copy.faiss") == sha256_file(root / "vectors.faiss")
    after = faiss.read_index(str(tmp_path / "copy.faiss")).search(queries, 20)
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("kind", ["pq_index", "opq_index"])
def test_trainer_scores_are_the_index_scores(kind: str, request, cranfield: Path) -> None:
    root = request.getfixturevalue(kind)
    trainer, _ = _trainer(root, cranfield)
    write_centroids(trainer.index.pq, read_centroids(trainer.index.pq) * 1.5)  # the faiss side moves...
    trainer.centroids.data *= 1.5  # ...and so does the trainer's copy
    trainer.model.eval()
    with torch.no_grad():
        vectors = trainer.embed(QUERIES)
        scores, labels = trainer.index.pq_index.search(vectors.numpy(), 10)
        mine = trainer.scores(vectors, torch.from_numpy(labels))
    np.testing.assert_allclose(mine.numpy(), scores, rtol=1e-4, atol=1e-4)
    unrotated = Index.load(root).encoder.encode_queries(QUERIES)
    np.testing.assert_allclose(trainer.index.index.search(unrotated, 10)[0], scores, rtol=1e-4, atol=1e-4)


def test_one_step_lowers_the_loss_and_moves_only_encoder_and_centroids(
    opq_index: Path, cranfield: Path
) -> None:
    trainer, batch = _trainer(opq_index, cranfield)
    trainer.model.eval()  # no dropout: the same batch gives the same loss before and after
    codes = faiss.vector_to_array(trainer.index.pq_index.codes).copy()
    encoder = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    centroids = trainer.centroids.detach().clone()

    first, negatives = trainer.loss(batch)
    for query, row in zip(batch, negatives, strict=True):
        assert not set(query.positives) & set(row.tolist())  # a judged-relevant document is never a negative
    trainer.step(batch)
    with torch.no_grad():
        second, _ = trainer.loss(batch, negatives)
    assert second < first

    assert not torch.equal(trainer.centroids.detach(), centroids)
    np.testing.assert_array_equal(read_centroids(trainer.index.pq), trainer.centroids.detach().numpy())
    assert any(not torch.equal(p, encoder[name]) for name, p in trainer.model.named_parameters())
    assert faiss.vector_to_array(trainer.index.pq_index.codes).tobytes() == codes.tobytes()


def test_output_index_loads_and_searches_with_the_trained_encoder(
    opq_index: Path, cranfield: Path, tmp_path: Path
) -> None:
    outputs = [
        train_jpq(
            opq_index, cranfield, tmp_path / f"jpq{n}", epochs=1, pairs="qrels", show_progress=False, **TRAIN
        )
        for n in (1, 2)
    ]
    out = outputs[0]
    manifest = Manifest.read(out)
    assert manifest.query_encoder == ENCODER_DIR and (out / ENCODER_DIR / "modules.json").is_file()
    assert manifest.factory == "OPQ8,PQ8x6" and manifest.encoder == "minilm"
    for name in ("docstore.sqlite", "docids.txt"):
        assert sha256_file(out / name) == sha256_file(opq_index / name)
    source, trained = load_pq_index(opq_index, Manifest.read(opq_index)), load_pq_index(out, manifest)
    raw = [faiss.vector_to_array(x.pq_index.codes).tobytes() for x in (source, trained)]
    assert raw[0] == raw[1]
    np.testing.assert_array_equal(trained.rotation, source.rotation)
    assert not np.array_equal(read_centroids(trained.pq), read_centroids(source.pq))
    # Same seed, same result.
    for name in ("vectors.faiss", f"{ENCODER_DIR}/model.safetensors"):
        assert sha256_file(outputs[1] / name) == sha256_file(out / name)

    index = Index.load(out)
    assert index.encoder.spec == str(out / ENCODER_DIR)
    hits = index.batch_search(QUERIES, k=10)
    vectors = index.encoder.encode_queries(QUERIES)
    scores, labels = faiss.read_index(str(out / "vectors.faiss")).search(vectors, 10)
    assert [[h.doc_id for h in row] for row in hits] == [[index.doc_ids[i] for i in row] for row in labels]
    np.testing.assert_allclose([[h.score for h in row] for row in hits], scores, rtol=1e-5)
    original = Index.load(opq_index).encoder.encode_queries(QUERIES)
    assert not np.allclose(vectors, original, atol=1e-4)


def test_served_embeddings_of_a_jpq_index_are_its_two_encoders(
    opq_index: Path, cranfield: Path, tmp_path: Path
) -> None:
    """`POST /v1/embeddings`: documents through the encoder the codes were built from, queries
    through the trained query tower, as the index itself encodes them."""
    from fastapi.testclient import TestClient

    from tessera.models.registry import load_encoder
    from tessera.serve import ServeSettings, create_app
    from tests.serve.conftest import wait_ready

    out = train_jpq(
        opq_index, cranfield, tmp_path / "jpq", epochs=1, pairs="qrels", show_progress=False, **TRAIN
    )
    index = Index.load(out)
    with TestClient(create_app(ServeSettings(indexes={"jpq": str(out)}))) as client:
        wait_ready(client.get)
        docs, queries = (
            client.post("/v1/embeddings", json={"input": QUERIES, "input_type": kind}).json()["data"]
            for kind in ("document", "query")
        )
    np.testing.assert_allclose(
        [row["embedding"] for row in docs], load_encoder("minilm").encode_docs(QUERIES), atol=1e-6
    )
    np.testing.assert_allclose(
        [row["embedding"] for row in queries], index.encoder.encode_queries(QUERIES), atol=1e-6
    )


def test_refuses_other_index_kinds_and_existing_output(
    flat_index: Path, pq_index: Path, cranfield: Path, tmp_path: Path
) -> None:
    with pytest.raises(TesseraError, match="needs a 'PQ<m>' or 'OPQ<m>,PQ<m>'.*IndexFlat") as error:
        train_jpq(flat_index, cranfield, tmp_path / "out", show_progress=False)
    assert error.value.field == "factory" and error.value.file == str(flat_index / "vectors.faiss")
    with pytest.raises(TesseraError, match="already exists"):
        train_jpq(pq_index, cranfield, flat_index, show_progress=False)
    assert not (tmp_path / "out").exists()
