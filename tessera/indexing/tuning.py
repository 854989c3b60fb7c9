"""Default search parameters tuned when an IVF or HNSW index is built, so they hold at any size.

faiss' own defaults (nprobe=1, efSearch=16) are right for no collection in particular: an
`IVF64,PQ48` index of an 11k-document collection searched with nprobe=1 lost 31% of flat's
nDCG@10 (issue 15). A fixed default cannot be right either, since the share of the inverted
lists a query must visit, or the HNSW beam it needs, changes with the collection. So the
builder (and `reindex`) measures: for queries made from a seeded sample of up to 1000 of
the corpus's own vectors (below) it computes the exact (flat inner product) top 10 and sweeps
nprobe / efSearch upward over a fixed ladder until the index's top 10 reaches recall@10 >=
0.95 against it; the smallest such value becomes the index's default (`manifest.search_params`) and the
measurement is kept in `manifest.tuning`. A parameter given at build time is stored as given
and not tuned; one given at search time (`--param`) overrides the stored default.

Queries are perturbed, held-out document vectors. A document vector searched as it is finds
itself first, and in an IVF index it lies in the very list its query probes first, so a
self-query gets one of its ten answers for free. Even without that answer, documents are
easier queries than real ones: on Cranfield, leave-one-out self-queries reached 0.956 at
nprobe=8 of IVF64,Flat, where its 225 real MiniLM queries reached 0.927. So each sampled
vector x is turned by a seeded random direction orthogonal to it into a query at cosine 0.5
from x, of x's norm (real MiniLM queries' best document lies at cosine 0.63-0.70 on LISA,
Cranfield, CISI and MEDLINE), and x is dropped from both the exact and the approximate top
11. For IVF64,Flat this chose nprobe 12, 16, 12 and 24 on Cranfield, CISI, MEDLINE and LISA,
where their real test queries reach recall@10 0.965, 0.989, 1.00 and 0.967; at cosine 0.7,
LISA got nprobe 16 and its test queries 0.91.

Lossy codes (PQ, SQ4, ...) can put 0.95 out of reach of any nprobe/efSearch: the search then
finds what an exhaustive scan of the same codes finds, and no more. When the ladder's top
value stays below the target, the tuned value is the smallest reaching 0.95 of that ceiling
(recorded as `ceiling`, with `target_met: false`).

An IVF index with a refinement stage (faiss `IndexRefine`, factory `...,RFlat` or
`...,Refine(SQ8)`) re-scores k_factor x k candidates with its finer codes, which lifts that
ceiling. Its k_factor (`k_factor_rf`) is tuned first, at a generous nprobe (REFINE_NPROBE, or
every list when there are fewer), as the smallest of K_FACTOR_LADDER that reaches the target
there (the ceiling rule above otherwise); nprobe is then swept as for any IVF index.

Queries of the workload itself replace the perturbed ones when the user has them (`tessera
index|reindex --tune-queries FILE`, as faiss' AutoTune takes training queries): the perturbation
is calibrated on text-embedding queries and asks more than queries that lie nearer the corpus
need (docs/scaling.md: on a Gaussian-mixture corpus whose queries come from the corpus's own
distribution it chose 0.978-0.997 recall at 62-90x flat's speed, where 0.95 was to be had at
106-114x). Nothing is dropped from their exact top 10, since they are not corpus rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import faiss
import numpy as np

from tessera.errors import TesseraError

log = logging.getLogger(__name__)

TARGET = 0.95  # recall@10 against exact search
SAMPLE = 1000  # held-out queries drawn from the corpus's own vectors
K = 10
QUERY_COSINE = 0.5  # cosine of a tuning query to the document it is made from
CHUNK = 65_536  # corpus rows scanned at once for the exact answers (bounded memory)
NPROBE_LADDER = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
# (parameter, value, queries, k) -> labels: another searcher of the same trained state
Searcher = Callable[[str, int, np.ndarray, int], np.ndarray]
EF_LADDER = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 4096)
K_FACTOR_LADDER = (1, 2, 4, 8, 16, 32, 64)  # IndexRefine: k_factor x k candidates re-scored
REFINE_NPROBE = 256  # lists probed while k_factor is chosen
FEW_QUERIES = 100  # fewer given tuning queries than this: warn (docs/results.md section 12)


def tunable_parameter(index: faiss.Index) -> str | None:
    """`nprobe` for any IVF index (OPQ/PCA-wrapped too), `efSearch` for HNSW, else None."""
    if faiss.try_extract_index_ivf(index) is not None:
        return "nprobe"
    inner = faiss.downcast_index(index)
    while isinstance(inner, faiss.IndexPreTransform):
        inner = faiss.downcast_index(inner.index)
    return "efSearch" if isinstance(inner, faiss.IndexHNSW) else None


def has_refine(index: faiss.Index) -> bool:
    """Whether `index` re-scores its candidates with a refinement index (IndexRefine)."""
    return isinstance(faiss.downcast_index(index), faiss.IndexRefine)


def ladder(index: faiss.Index, name: str) -> list[int]:
    """The increasing values tried: up to the list count for nprobe (all lists: exhaustive)."""
    if name == "nprobe":
        nlist = int(faiss.try_extract_index_ivf(index).nlist)
        return [v for v in NPROBE_LADDER if v < nlist] + [nlist]
    return [v for v in EF_LADDER if v >= K]


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Labels of the exact inner-product top k, scanning `vectors` (a memmap is fine) in chunks."""
    best_s = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_l = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(vectors), CHUNK):
        block = np.ascontiguousarray(vectors[start : start + CHUNK], dtype=np.float32)
        scores, labels = faiss.knn(queries, block, min(k, len(block)), metric=faiss.METRIC_INNER_PRODUCT)
        scores = np.concatenate([best_s, scores], axis=1)
        labels = np.concatenate([best_l, labels + start], axis=1)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        best_s, best_l = np.take_along_axis(scores, order, 1), np.take_along_axis(labels, order, 1)
    return best_l


def perturbed(vectors: np.ndarray, rng: np.random.Generator, cosine: float = QUERY_COSINE) -> np.ndarray:
    """Each row turned by a random orthogonal direction to `cosine` from itself, norm kept."""
    noise = rng.standard_normal(vectors.shape).astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.maximum(norms, 1e-12)
    noise -= (noise * unit).sum(axis=1, keepdims=True) * unit
    noise /= np.maximum(np.linalg.norm(noise, axis=1, keepdims=True), 1e-12)
    queries = cosine * vectors + np.sqrt(1 - cosine**2) * norms * noise
    return np.ascontiguousarray(queries, dtype=np.float32)


def _drop_self(labels: np.ndarray, own: np.ndarray, k: int) -> list[set[int]]:
    return [set([int(x) for x in row if x != me and x >= 0][:k]) for row, me in zip(labels, own, strict=True)]


def recall_at(
    index: faiss.Index,
    name: str,
    value: int,
    queries: np.ndarray,
    own: np.ndarray,
    truth,
    search: Searcher | None = None,
) -> float:
    """Recall@K at `name`=`value`; `search(name, value, queries, k) -> labels` replaces setting
    and searching `index` itself (a sharded index sets every shard and merges their top k)."""
    if search is None:
        faiss.ParameterSpace().set_index_parameter(index, name, value)
        _, labels = index.search(queries, K + 1)
    else:
        labels = search(name, value, queries, K + 1)
    found = _drop_self(labels, own, K)
    return float(np.mean([len(f & t) / len(t) for f, t in zip(found, truth, strict=True) if t]))


def tune(
    index: faiss.Index,
    vectors: np.ndarray,
    given: dict | None = None,
    target: float = TARGET,
    sample: int = SAMPLE,
    seed: int = 0,
    search: Searcher | None = None,
    queries: np.ndarray | None = None,
) -> tuple[dict[str, float], dict]:
    """The tuned default of `index` built from `vectors` (CPU index) and the record of how.

    Returns ({} , {}) for kinds with nothing to tune, or when the user gave the parameter.
    Leaves the index set to the tuned value. `search` (see `recall_at`) measures another
    searcher of the same trained state instead, e.g. the shards of a sharded index; `index`
    then only names the parameter and its ladder, and `vectors` may be any row sequence.
    `queries`: sample queries of the workload (up to `sample` of them, seeded) instead of
    perturbed corpus rows."""
    name = tunable_parameter(index)
    count = len(vectors)
    if name is None or name in (given or {}) or count <= K + 1:
        if queries is not None and name is None:
            log.warning("--tune-queries: this index kind has no search parameter to tune")
        return {}, {}
    rng = np.random.default_rng(seed)
    if queries is None:
        rows = np.sort(rng.choice(count, size=min(count, sample), replace=False))
        queries = perturbed(np.asarray(vectors[rows], dtype=np.float32), rng)
        source = {"query_source": "perturbed corpus rows", "query_cosine": QUERY_COSINE}
    else:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != index.d or not len(queries):
            raise TesseraError(
                f"tuning queries must be {index.d}-d vectors, got an array of shape {queries.shape}",
                field="tune_queries",
            )
        if len(queries) > sample:
            queries = queries[np.sort(rng.choice(len(queries), size=sample, replace=False))]
        if len(queries) < FEW_QUERIES:
            log.warning(
                "tuning on %d queries: a recall measured on so few is noisy, and the default may not "
                "hold on others (LISA: tuned on 23, its test queries got 0.91); give %d or more",
                len(queries),
                FEW_QUERIES,
            )
        rows = np.full(len(queries), -1, dtype=np.int64)  # no corpus row to leave out
        source = {"query_source": "given"}
    truth = _drop_self(exact_neighbours(vectors, queries, K + 1), rows, K)
    tuned, record = {}, {}
    if name == "nprobe" and has_refine(index) and search is None and "k_factor_rf" in (given or {}):
        faiss.ParameterSpace().set_index_parameter(index, "k_factor_rf", given["k_factor_rf"])
    elif name == "nprobe" and has_refine(index) and search is None:
        probe = min(REFINE_NPROBE, ladder(index, name)[-1])
        faiss.ParameterSpace().set_index_parameter(index, name, probe)
        k_factors = _sweep(index, "k_factor_rf", K_FACTOR_LADDER, queries, rows, truth, target, None)
        k_factor, _, _ = _chosen(k_factors, target)
        faiss.ParameterSpace().set_index_parameter(index, "k_factor_rf", k_factor)
        tuned = {"k_factor_rf": k_factor}
        record = {"k_factor_rf_sweep": [[v, round(r, 4)] for v, r in k_factors], "k_factor_nprobe": probe}
    measured = _sweep(index, name, ladder(index, name), queries, rows, truth, target, search)
    value, reached, ceiling = _chosen(measured, target)
    try:
        faiss.ParameterSpace().set_index_parameter(index, name, value)
    except RuntimeError as exc:  # pragma: no cover - every value above was just applied
        raise TesseraError(f"cannot set {name}={value}: {exc}", field="search_params") from None
    record = {
        **record,
        "param": name,
        "value": value,
        "k": K,
        "target": target,
        "recall": round(reached, 4),
        "target_met": reached >= target,
        "queries": len(rows),
        **source,
        "seed": seed,
        "sweep": [[v, round(r, 4)] for v, r in measured],
    }
    if ceiling < target:
        record["ceiling"] = round(ceiling, 4)
        log.info("%s: recall@%d %.3f at best (lossy codes); tuned to %.3f of it", name, K, ceiling, target)
    return {**tuned, name: value}, record


def _sweep(index, name, values, queries, own, truth, target, search) -> list[tuple[int, float]]:
    """Recall at each value in turn, stopping at the first that reaches `target`."""
    measured: list[tuple[int, float]] = []
    for value in values:
        measured.append((value, recall_at(index, name, value, queries, own, truth, search)))
        if measured[-1][1] >= target:
            break
    return measured


def _chosen(measured: list[tuple[int, float]], target: float) -> tuple[int, float, float]:
    """(value, its recall, the ceiling): the first value reaching the target, or `target` of
    the best recall when none does."""
    ceiling = max(r for _, r in measured)
    goal = target if ceiling >= target else target * ceiling
    value, reached = next((v, r) for v, r in measured if r >= goal)
    return value, reached, ceiling
