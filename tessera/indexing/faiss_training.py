"""How Tessera trains faiss indexes where faiss' defaults serve it badly.

Polysemous training: index_factory turns it on for every PQ (15x slower to train here); it
only pays off for polysemous Hamming filtering, which Tessera's search does not use, so it is
turned off wherever a PQ sits (under OPQ, a refinement or an HNSW graph too).

Undersized samples: faiss' k-means prints "WARNING clustering N points to K centroids" to the C
stderr each time it clusters fewer than 39 points a centroid. A PQ trains one k-means per
sub-quantizer and OPQ retrains the PQ on every one of its iterations, so `--index OPQ48,PQ48` on
a 1,000-document corpus printed 2,448 such lines (MEDLINE), burying the output. The limit only
decides whether faiss warns (the trained index is byte for byte the same: tested), so it is
lowered on every k-means the index will run and Tessera warns once, naming the factory and the
counts. OPQ trains through a PQ it makes inside (`OPQMatrix::train`, 8 bits a code) unless given
one; it is given one with the limit lowered, held by Python only while training runs (faiss
keeps a raw pointer), then taken back.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import faiss

from tessera.errors import TesseraWarning


def parts(index: faiss.Index) -> Iterator[faiss.Index]:
    """`index` and every index nested in it (under a transform, a refinement, an HNSW graph)."""
    index = faiss.downcast_index(index)
    yield index
    if isinstance(index, faiss.IndexPreTransform):
        yield from parts(index.index)
    elif isinstance(index, faiss.IndexRefine):
        yield from parts(index.base_index)
        yield from parts(index.refine_index)
    elif isinstance(index, faiss.IndexHNSW):
        yield from parts(index.storage)


def skip_polysemous_training(index: faiss.Index) -> None:
    """Polysemous training off in every PQ of `index` (see the module docstring)."""
    for part in parts(index):
        if hasattr(part, "do_polysemous_training"):
            part.do_polysemous_training = False


def _clusterings(index: faiss.Index, lent: list) -> Iterator[tuple[faiss.ClusteringParameters, int]]:
    """The parameters of every k-means training `index` runs, with its centroid count; OPQ
    matrices are lent a PQ (appended to `lent` as (matrix, pq)). Unknown kinds yield nothing."""
    for part in parts(index):
        if isinstance(part, faiss.IndexPreTransform):
            for position in range(part.chain.size()):
                transform = faiss.downcast_VectorTransform(part.chain.at(position))
                if isinstance(transform, faiss.OPQMatrix) and transform.pq is None:
                    pq = faiss.ProductQuantizer(transform.d_out, transform.M, 8)
                    transform.pq = pq
                    lent.append((transform, pq))
                    yield pq.cp, pq.ksub
        if isinstance(part, faiss.IndexIVF):
            yield part.cp, part.nlist
        pq = getattr(part, "pq", None)
        if isinstance(pq, faiss.ProductQuantizer):
            yield pq.cp, pq.ksub


@contextmanager
def one_clustering_warning(index: faiss.Index, sample_count: int, factory: str) -> Iterator[None]:
    """Train `index` inside: faiss' per-k-means warnings off, one TesseraWarning after when
    `sample_count` vectors are fewer than a k-means of it asks for."""
    lent: list = []
    wanted = 0
    for params, centroids in _clusterings(index, lent):
        if centroids * params.min_points_per_centroid > wanted:
            wanted, largest = centroids * params.min_points_per_centroid, centroids
        params.min_points_per_centroid = 1
    try:
        yield
    finally:
        for transform, _pq in lent:
            transform.pq = None
    if sample_count < wanted:
        warnings.warn(
            TesseraWarning(
                f"'{factory}' was trained on {sample_count} vectors; faiss asks for {wanted} to "
                f"place {largest} centroids well, so its codes are coarser than on a larger corpus",
                field="index",
            ),
            stacklevel=3,
        )
