"""JPQ: train the query encoder and the PQ centroids of a compressed index together.

After Zhan et al., "Jointly Optimizing Query Encoder and Product Quantization to Improve
Retrieval Performance" (CIKM 2021). Product quantization is trained to reconstruct document
vectors, not to rank; JPQ keeps every document's PQ codes (the bulk of the index) fixed and
trains what is cheap to change, the query encoder and the few centroids, on the scores the
compressed index actually produces:

- scores are query . reconstructed document, the document rebuilt from its fixed codes and
  the current centroids, so gradients reach both the encoder and the centroids;
- negatives are the top-ranked unjudged documents of the compressed index itself, searched
  with the current encoder and centroids at every step (never a judged-relevant document);
- the loss is pairwise (RankNet) with LambdaRank weights: each (positive, negative) pair
  counts by how much swapping the two would change nDCG of the current ranking.

An OPQ rotation stays fixed: query vectors are rotated before being split into sub-vectors.
The result is a new index directory holding the trained centroids and the query encoder.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import faiss
import numpy as np
import torch

from tessera.data.corpus import Corpus
from tessera.data.datasets import EvalDataset
from tessera.data.document import Document
from tessera.errors import TesseraError
from tessera.indexing import staging
from tessera.indexing.chunking import refuse_chunked
from tessera.indexing.docstore import DocStore
from tessera.indexing.faiss_backend import FaissBackend
from tessera.indexing.manifest import MANIFEST, Manifest
from tessera.models.bundled import BUNDLED, bundled_path
from tessera.models.dense import DenseEncoder
from tessera.models.runtimes import split_runtime
from tessera.progress import progress_bar
from tessera.training.examples import build_examples, dataset_corpus, judged_split, parse_sources
from tessera.training.synthetic import SyntheticSettings, check_synthetic_spec

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

ENCODER_DIR = "encoder"
# Unit-length embeddings give scores in [-1, 1]; the pairwise logistic loss needs logits.
SCALE = 20.0


@dataclass
class PQIndex:
    """The parts of a (pre-transformed) IndexPQ that JPQ reads and writes."""

    index: faiss.Index  # what is saved: IndexPQ, or IndexPreTransform(OPQMatrix) around it
    pq_index: faiss.IndexPQ
    codes: np.ndarray  # (documents, M) centroid numbers, fixed
    rotation: np.ndarray | None  # (d_out, d_in) OPQ matrix, applied to queries
    bias: np.ndarray | None

    @property
    def pq(self) -> faiss.ProductQuantizer:
        return self.pq_index.pq


def unpack_codes(raw: np.ndarray, m: int, nbits: int) -> np.ndarray:
    """faiss packs PQ codes least significant bit first; return one centroid number per sub-vector."""
    if nbits == 8:
        return raw[:, :m].astype(np.int64)
    bits = np.unpackbits(raw, axis=1, bitorder="little")[:, : m * nbits]
    return (bits.reshape(len(raw), m, nbits).astype(np.int64) << np.arange(nbits)).sum(axis=-1)


def read_centroids(pq: faiss.ProductQuantizer) -> np.ndarray:
    """Centroids as (M, K, dsub) floats."""
    return faiss.vector_to_array(pq.centroids).reshape(pq.M, pq.ksub, pq.dsub)


def write_centroids(pq: faiss.ProductQuantizer, centroids: np.ndarray) -> None:
    """Replace the centroids in place; codes are untouched, so only scores change."""
    faiss.copy_array_to_vector(np.ascontiguousarray(centroids, dtype=np.float32).ravel(), pq.centroids)
    if pq.transposed_centroids.size() > 0:  # a cache some faiss searches use: keep it in step
        pq.sync_transposed_centroids()


def _unsupported(path: Path, what: str) -> TesseraError:
    return TesseraError(
        f"JPQ needs a 'PQ<m>' or 'OPQ<m>,PQ<m>' faiss index; this one is {what}", file=path, field="factory"
    )


def load_pq_index(root: Path, manifest: Manifest) -> PQIndex:
    """Open `vectors.faiss` of a PQ or OPQ+PQ inner-product index; anything else is refused."""
    refuse_chunked(manifest, root, "train jpq")
    if manifest.backend != "faiss":
        raise _unsupported(root / MANIFEST, f"a {manifest.backend} index")
    if manifest.metric != "ip":
        raise TesseraError(
            f"JPQ trains inner-product indexes; this one uses '{manifest.metric}'",
            file=root / MANIFEST,
            field="metric",
        )
    path = root / FaissBackend.FILE
    index = faiss.read_index(str(path))
    rotation = bias = None
    inner = index
    if isinstance(index, faiss.IndexPreTransform):
        transforms = [faiss.downcast_VectorTransform(index.chain.at(i)) for i in range(index.chain.size())]
        # faiss saves an OPQMatrix as a plain LinearTransform; PCA, ITQ, ... keep their own types.
        if len(transforms) != 1 or type(transforms[0]) not in (faiss.OPQMatrix, faiss.LinearTransform):
            names = "+".join(type(t).__name__ for t in transforms)
            raise _unsupported(path, f"pre-transformed by {names} ('{manifest.factory}')")
        opq = transforms[0]
        rotation = faiss.vector_to_array(opq.A).reshape(opq.d_out, opq.d_in)
        bias = faiss.vector_to_array(opq.b) if opq.have_bias else None
        inner = faiss.downcast_index(index.index)
    if type(inner) is not faiss.IndexPQ:
        raise _unsupported(path, f"{type(inner).__name__} ('{manifest.factory}')")
    pq = inner.pq
    raw = faiss.vector_to_array(inner.codes).reshape(inner.ntotal, pq.code_size)
    return PQIndex(index, inner, unpack_codes(raw, pq.M, pq.nbits), rotation, bias)


@dataclass(frozen=True)
class TrainQuery:
    """A query and every document it must rank above the rest (as docstore ordinals)."""

    text: str
    positives: tuple[int, ...]


def group_pairs(pairs: Sequence[tuple[str, str]], doc_ids: Sequence[str]) -> list[TrainQuery]:
    """Merge pairs by query text, so no positive of a query is ever drawn as its negative.

    Pairs naming documents absent from the index are dropped (an index of part of a corpus).
    """
    ordinal = {doc_id: number for number, doc_id in enumerate(doc_ids)}
    grouped: dict[str, dict[int, None]] = {}
    for text, doc_id in pairs:
        if doc_id in ordinal:
            grouped.setdefault(text, {})[ordinal[doc_id]] = None
    return [TrainQuery(text, tuple(found)) for text, found in grouped.items()]


class JPQTrainer:
    """The query encoder and the centroids as one model, trained on compressed-index scores."""

    def __init__(
        self,
        model: SentenceTransformer,
        index: PQIndex,
        *,
        lr_encoder: float,
        lr_centroids: float,
        negatives: int,
    ):
        self.model = model  # trained in place
        self.index = index
        self.negatives = negatives
        device = model.device
        self.centroids = torch.nn.Parameter(torch.from_numpy(read_centroids(index.pq).copy()).to(device))
        self.codes = torch.from_numpy(index.codes).to(device)
        self.rotation = None if index.rotation is None else torch.from_numpy(index.rotation.copy()).to(device)
        self.bias = None if index.bias is None else torch.from_numpy(index.bias.copy()).to(device)
        self.prompt = model.prompts.get("query") or None
        self.optimizer = torch.optim.AdamW(
            [
                {"params": list(model.parameters()), "lr": lr_encoder, "weight_decay": 0.01},
                {"params": [self.centroids], "lr": lr_centroids, "weight_decay": 0.0},
            ]
        )

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """Query vectors as the index sees them: unit length (as DenseEncoder makes them), rotated."""
        features = self.model.preprocess(list(texts), prompt=self.prompt, task="query")
        features = {k: v.to(self.model.device) if torch.is_tensor(v) else v for k, v in features.items()}
        vectors = torch.nn.functional.normalize(
            self.model(features, task="query")["sentence_embedding"], dim=-1
        )
        if self.rotation is not None:
            vectors = vectors @ self.rotation.T
            if self.bias is not None:
                vectors = vectors + self.bias
        return vectors

    def scores(self, queries: torch.Tensor, docs: torch.Tensor) -> torch.Tensor:
        """(B, C) scores of B queries against C documents each, from their codes and the centroids.

        Computed as faiss does (a table of sub-vector . centroid, summed over each document's
        codes); its gradient is a gather's, deterministic on CPU, unlike indexing the centroids.
        """
        m, _, dsub = self.centroids.shape
        table = torch.einsum("bmd,mkd->bmk", queries.view(len(queries), m, dsub), self.centroids)
        codes = self.codes[docs].transpose(1, 2)  # (B, M, C)
        return torch.gather(table, 2, codes).sum(dim=1)

    def retrieve_negatives(self, vectors: np.ndarray, batch: Sequence[TrainQuery]) -> np.ndarray:
        """(B, negatives) top-ranked unjudged documents per query, -1 where the index runs out."""
        depth = min(self.index.pq_index.ntotal, self.negatives + max(len(q.positives) for q in batch))
        _, labels = self.index.pq_index.search(np.ascontiguousarray(vectors, dtype=np.float32), depth)
        found = np.full((len(batch), self.negatives), -1, dtype=np.int64)
        for row, (query, ranked) in enumerate(zip(batch, labels, strict=True)):
            positives = set(query.positives)
            kept = [label for label in ranked if label >= 0 and label not in positives][: self.negatives]
            found[row, : len(kept)] = kept
        return found

    def loss(
        self, batch: Sequence[TrainQuery], negatives: np.ndarray | None = None
    ) -> tuple[torch.Tensor, np.ndarray]:
        """LambdaRank-weighted pairwise loss of a batch, and the negatives it used."""
        vectors = self.embed([query.text for query in batch])
        if negatives is None:
            negatives = self.retrieve_negatives(vectors.detach().cpu().numpy(), batch)
        width = max(len(q.positives) for q in batch)
        positives = np.full((len(batch), width), -1, dtype=np.int64)
        for row, query in enumerate(batch):
            positives[row, : len(query.positives)] = query.positives
        docs = torch.from_numpy(np.concatenate([positives, negatives], axis=1)).to(vectors.device)
        valid = docs >= 0
        is_positive = torch.zeros_like(valid)
        is_positive[:, :width] = valid[:, :width]
        scores = self.scores(vectors, docs.clamp(min=0))
        weights = _lambda_weights(scores.detach(), valid, is_positive)
        margins = scores.unsqueeze(1) - scores.unsqueeze(2)  # [b, i, j] = s_j - s_i
        pairwise = torch.nn.functional.softplus(SCALE * margins)
        return (weights * pairwise).sum() / len(batch), negatives

    def step(self, batch: Sequence[TrainQuery]) -> float:
        self.optimizer.zero_grad()
        loss, _ = self.loss(batch)
        loss.backward()
        self.optimizer.step()
        self.sync_centroids()
        return float(loss.detach())

    def sync_centroids(self) -> None:
        """Copy the trained centroids into the faiss index, whose search finds the next negatives."""
        write_centroids(self.index.pq, self.centroids.detach().cpu().numpy())


def _lambda_weights(scores: torch.Tensor, valid: torch.Tensor, is_positive: torch.Tensor) -> torch.Tensor:
    """(B, C, C) |change in nDCG| if positive i and negative j swapped places in the current ranking.

    Ranks are counted among the candidates (positives and the retrieved top negatives), which is
    exact for every document above the deepest negative; relevance is binary.
    """
    masked = scores.masked_fill(~valid, float("-inf"))
    ranks = 1 + (masked.unsqueeze(1) > masked.unsqueeze(2)).sum(dim=2)  # (B, C)
    discount = 1.0 / torch.log2(1.0 + ranks.float())
    ideal = torch.cumsum(1.0 / torch.log2(2.0 + torch.arange(scores.shape[1], device=scores.device)), 0)
    count = is_positive.sum(dim=1)
    idcg = ideal[(count - 1).clamp(min=0)]
    delta = (discount.unsqueeze(2) - discount.unsqueeze(1)).abs() / idcg.view(-1, 1, 1)
    pairs = is_positive.unsqueeze(2) & (valid & ~is_positive).unsqueeze(1)
    return delta * pairs


def _load_query_model(root: Path, manifest: Manifest) -> SentenceTransformer:
    """A fresh trainable copy of the index's query encoder (a previous JPQ encoder if there is
    one), in fp32 whatever runtime encoded the documents: training needs PyTorch weights."""
    base = split_runtime(manifest.encoder)[0]
    if manifest.query_encoder:
        path: str | Path = root / manifest.query_encoder
    elif base in BUNDLED:
        path = bundled_path(base)
    else:
        path = base
    return DenseEncoder(base, path).model


def _index_corpus(root: Path) -> Corpus:
    """The index's own documents (its doc store) as a corpus for the self-supervised sources."""

    def documents() -> Iterator[Document]:
        store = DocStore(root / DocStore.FILE, readonly=True)
        try:
            yield from store.documents()
        finally:
            store.close()

    return Corpus(str(root / DocStore.FILE), "docstore", documents)


def _training_pairs(
    dataset: EvalDataset | str | Path,
    split: str,
    root: Path,
    sources: Sequence[str],
    seed: int,
    synthetic: SyntheticSettings,
) -> list[tuple[str, str]]:
    """(query, document id) pairs of the pair sources, as the dense trainers get them.

    Self-supervised sources read the dataset's own corpus, as `train dense` does (so both share
    one synthetic-query cache), or the index's doc store when `dataset` is an `EvalDataset`.
    """
    data = judged_split(dataset, split, sources)
    corpus = _index_corpus(root) if isinstance(dataset, EvalDataset) else dataset_corpus(dataset, split)
    examples, _ = build_examples(sources, corpus, data, seed, synthetic, show_progress=False)
    return [(example.query, example.doc_id) for example in examples]


def _write_output(
    source: Path, manifest: Manifest, trainer: JPQTrainer, target: Path, overwrite: bool
) -> None:
    """The source index with the trained centroids and query encoder swapped in."""
    old_encoder = f"{manifest.query_encoder}/" if manifest.query_encoder else None
    copy = [
        name
        for name in manifest.files
        if name != FaissBackend.FILE and not (old_encoder and name.startswith(old_encoder))
    ]

    def fill(root: Path) -> Manifest:
        trainer.sync_centroids()
        faiss.write_index(trainer.index.index, str(root / FaissBackend.FILE))
        trainer.model.save(str(root / ENCODER_DIR))
        return replace(manifest, query_encoder=ENCODER_DIR)

    staging.write_derived(source, target, copy, fill, overwrite)


def train_jpq(
    index_dir: str | Path,
    dataset: EvalDataset | str | Path,
    output: str | Path,
    *,
    split: str = "train",
    epochs: int = 10,
    lr_encoder: float = 5e-5,
    lr_centroids: float = 1e-4,
    negatives: int = 100,
    batch_size: int = 16,
    pairs: str | Sequence[str] = "qrels",
    synthetic: str = "local",
    synthetic_docs: int | None = 300,
    seed: int = 0,
    overwrite: bool = False,
    show_progress: bool = True,
) -> Path:
    """Train JPQ on the pair sources and write the index `output`.

    The default is judged queries alone. Adding synthetic queries (`pairs="qrels,synthetic"`)
    gained on Cranfield and CISI but by less than the noise, and lost on MEDLINE
    (docs/results.md, section 7), so it stays an option rather than an LLM run by default.

    `dataset` is an `EvalDataset` or anything `load_eval_dataset` resolves (with `split`).
    The source index is only read; `output` gets its documents, codes and ids unchanged.
    """
    source = Path(index_dir).expanduser().resolve()
    target = staging.new_target(output, overwrite)
    for name, value in (("epochs", epochs), ("negatives", negatives), ("batch_size", batch_size)):
        if value < 1:
            raise TesseraError("must be at least 1", field=name)
    manifest = Manifest.read(source)
    index = load_pq_index(source, manifest)
    doc_ids = (source / "docids.txt").read_text(encoding="utf-8").splitlines()
    settings = SyntheticSettings(generator=synthetic, max_docs=synthetic_docs)
    if "synthetic" in parse_sources(pairs):
        check_synthetic_spec(synthetic)
    found = _training_pairs(dataset, split, source, parse_sources(pairs), seed, settings)
    queries = group_pairs(found, doc_ids)
    if not queries:
        raise TesseraError("no training pair names a document of this index", file=source, field="dataset")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    trainer = JPQTrainer(
        _load_query_model(source, manifest),
        index,
        lr_encoder=lr_encoder,
        lr_centroids=lr_centroids,
        negatives=negatives,
    )
    trainer.model.train()
    steps = -(-len(queries) // batch_size)
    with progress_bar(show_progress) as bar:
        epoch_task = bar.add_task("JPQ epochs", total=epochs) if bar else None
        step_task = bar.add_task("steps", total=steps) if bar else None
        for epoch in range(epochs):
            order = rng.permutation(len(queries))
            if bar:
                bar.reset(step_task, total=steps, description=f"epoch {epoch + 1}")
            for start in range(0, len(order), batch_size):
                loss = trainer.step([queries[i] for i in order[start : start + batch_size]])
                if bar:
                    bar.update(step_task, advance=1, description=f"epoch {epoch + 1} loss {loss:.4f}")
            if bar:
                bar.update(epoch_task, advance=1)
    trainer.model.eval()
    _write_output(source, manifest, trainer, target, overwrite)
    return target
