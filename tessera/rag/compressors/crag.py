"""CRAG (Clustered Retrieval-Augmented Generation, Akesson & Santos 2024): cluster the retrieved
passages, summarise each cluster, prompt from the summaries.

The paper leaves its clustering and prompt unpublished; here:
- passages are embedded with the index's dense encoder (bundled MiniLM for BM25 or token indexes),
- clustered by faiss spherical k-means, k in 2..`max_clusters` chosen by the best mean silhouette
  (cosine; scikit-learn), one cluster when there are fewer than three passages or no split has a
  positive silhouette, i.e. when the passages are not grouped at all,
- each cluster summarised within a share of the budget proportional to its passages' tokens:
  extractively (`summaries.extractive_summary`: each passage's gist, then the sentences covering
  most of the cluster's words; `fill` picks another selector) by default, or by the generator
  (`summarizer="generator"`),
- the budget defaults to `ratio` (0.5) of the plain context's tokens.
`clusters=K` fixes k instead (benchmarks/rag.py compares fixed k with the silhouette choice).
Blocks come out in the order of each cluster's best-ranked passage; each names all its passages.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tessera.rag.compressors.base import Tools, budget_and_lengths, check_option, check_ratio, shares
from tessera.rag.compressors.summaries import DEFAULT_FILL, check_fill, check_summarizer, summarize
from tessera.rag.passages import Block, Passage


def kmeans_labels(vectors: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """faiss spherical k-means; labels renumbered 0..k'-1 (an empty centroid drops out)."""
    import faiss

    kmeans = faiss.Kmeans(
        vectors.shape[1],
        k,
        niter=25,
        nredo=10,
        seed=seed,
        spherical=True,
        min_points_per_centroid=1,
        verbose=False,
    )
    kmeans.train(np.ascontiguousarray(vectors, dtype=np.float32))
    _, labels = kmeans.index.search(np.ascontiguousarray(vectors, dtype=np.float32), 1)
    _, renumbered = np.unique(labels[:, 0], return_inverse=True)
    return renumbered


def choose_clusters(vectors: np.ndarray, max_clusters: int = 8, seed: int = 0) -> tuple[np.ndarray, float]:
    """Labels of the k with the best silhouette, and that silhouette (0.0 for one cluster)."""
    from sklearn.metrics import silhouette_score

    n = len(vectors)
    best_labels, best_score = np.zeros(n, dtype=np.int64), 0.0
    for k in range(2, min(max_clusters, n - 1) + 1):
        labels = kmeans_labels(vectors, k, seed)
        if len(set(labels.tolist())) < 2:
            continue
        score = float(silhouette_score(vectors, labels, metric="cosine"))
        if score > best_score:
            best_labels, best_score = labels, score
    return best_labels, best_score


class CragCompressor:
    name = "crag"

    def __init__(
        self,
        tools: Tools,
        ratio: float = 0.5,
        max_clusters: int = 8,
        summarizer: str = "extractive",
        seed: int = 0,
        clusters: int | None = None,
        fill: str = DEFAULT_FILL,
    ):
        check_summarizer(tools, summarizer)
        check_fill(fill)
        check_ratio("ratio", ratio)
        check_option("max_clusters", max_clusters, max_clusters >= 1, "at least 1")
        check_option("clusters", clusters, clusters is None or clusters >= 1, "at least 1")
        self.fill = fill
        self.tools, self.ratio, self.max_clusters, self.fixed_k = tools, ratio, max_clusters, clusters
        self.summarizer, self.seed = summarizer, seed
        self.last_silhouette = 0.0

    def clusters(self, passages: Sequence[Passage], vectors: np.ndarray | None = None) -> list[list[int]]:
        """Passage positions per cluster, clusters in the order of their best-ranked passage.
        `vectors`: the passages' embeddings, when the caller has them."""
        if len(passages) < 3 or self.fixed_k == 1:
            return [list(range(len(passages)))] if passages else []
        if vectors is None:
            vectors = self.tools.embed_docs([p.flat_text for p in passages])
        if self.fixed_k is None:
            labels, self.last_silhouette = choose_clusters(vectors, self.max_clusters, self.seed)
        else:
            labels = kmeans_labels(vectors, min(self.fixed_k, len(passages)), self.seed)
        groups: dict[int, list[int]] = {}
        for position, label in enumerate(labels.tolist()):
            groups.setdefault(label, []).append(position)
        return sorted(groups.values(), key=min)

    def compress(self, question: str, passages: Sequence[Passage], budget: int | None) -> list[Block]:
        if not passages:
            return []
        budget, lengths = budget_and_lengths(self.tools, passages, budget, self.ratio)
        vectors = self.tools.embed_docs([p.flat_text for p in passages])  # clusters and gists share them
        groups = self.clusters(passages, vectors)
        question_vector = self.tools.embed_queries([question])[0]
        blocks = []
        for group, group_budget in zip(
            groups, shares(budget, [sum(lengths[i] for i in g) for g in groups]), strict=True
        ):
            members = [passages[i] for i in group]
            text = summarize(
                self.tools,
                question,
                question_vector,
                members,
                group_budget,
                self.summarizer,
                self.fill,
                vectors[group],
            )
            blocks.append(Block(text, tuple(p.doc_id for p in members), tuple(group)))
        return blocks
