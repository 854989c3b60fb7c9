"""Pseudo-relevance feedback for dense indexes: the query vector moved toward the vectors of
its own top documents, then searched again (Rocchio on embeddings; Li et al., "Pseudo
Relevance Feedback with Deep Language Models and Dense Retrievers", pyserini's
`--prf-depth/--prf-method rocchio`).

    q' = prf_alpha * q + prf_beta * mean(vectors of the top prf_depth documents of q)

Search parameters, off unless `prf_depth` is given: `prf_depth=5` with the paper's
`prf_alpha=0.4`, `prf_beta=0.6` (Average PRF is `prf_alpha = prf_beta / prf_depth`, scaled: the
ranking is the same). The feedback vectors are the index's own (faiss `reconstruct`), exact for
Flat, HNSW and IVF-Flat, decoded codes for PQ kinds, so no document is encoded again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tessera.errors import TesseraError, finite_number

NAMES = ("prf_depth", "prf_alpha", "prf_beta")


@dataclass(frozen=True)
class VectorPrf:
    depth: int
    alpha: float = 0.4
    beta: float = 0.6

    def expand(self, queries: np.ndarray, feedback: np.ndarray, found: np.ndarray) -> np.ndarray:
        """New query vectors from `queries` (n, d) and each one's feedback vectors (n, depth, d);
        `found` (n, depth) marks real hits (a corpus smaller than depth leaves -1 labels)."""
        counts = np.maximum(found.sum(axis=1, keepdims=True), 1)
        centroid = (feedback * found[..., None]).sum(axis=1) / counts
        return (self.alpha * queries + self.beta * centroid).astype(np.float32)


def split_vector_prf(params: dict) -> tuple[VectorPrf | None, dict]:
    """(the PRF settings or None, the other parameters); bad values are refused by name."""
    rest = {name: value for name, value in params.items() if name not in NAMES}
    given = {name: params[name] for name in NAMES if name in params}
    if not given:
        return None, rest
    values = {name: finite_number(name, value, name) for name, value in given.items()}
    depth = values.get("prf_depth", 0)
    if depth != int(depth) or depth < 0:
        why = f"prf_depth must be a whole number >= 0, not {given['prf_depth']}"
        raise TesseraError(why, field="prf_depth")
    if not depth:
        if len(values) > ("prf_depth" in values):
            raise TesseraError("prf_alpha and prf_beta need prf_depth >= 1", field="prf_depth")
        return None, rest
    alpha, beta = values.get("prf_alpha", VectorPrf.alpha), values.get("prf_beta", VectorPrf.beta)
    prf = VectorPrf(int(depth), alpha, beta)
    if prf.alpha < 0 or prf.beta < 0 or prf.alpha + prf.beta == 0:
        raise TesseraError("prf_alpha and prf_beta must be >= 0, not both 0", field="prf_alpha")
    return prf, rest
