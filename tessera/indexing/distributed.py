"""Distributed index builds on Ray (`tessera index --ray`): encoding fans out, the index is built once.

A build has three resumable phases in one staging directory (indexing/staging.py):
1. here, the driver streams the corpus into the doc store, checkpointing `progress.json` per
   batch like the single-process builder, so the ordinals (= vector labels) are corpus order;
2. `ray_encoding.py`: contiguous shards of ordinals (`--shards`, default
   max(workers, ceil(docs / SHARD_DOCS))) encoded by a Ray Data actor pool into shard files;
3. `shard_index.py`: one trained state, filled per shard, merged into the single-process
   build's index (layout `merged`) or kept per shard and searched shard by shard (`sharded`).

The staging directory must be on a file system every Ray node sees (local disk for a local
cluster, a shared mount for a multi-node one), and tessera must be installed on every node.
Only dense single-vector encoders are supported: bm25 gains nothing from it, and token
(ColBERT/XTR) and chunked builds keep the single-process builder.
"""

from __future__ import annotations

import logging
import math
import os
from itertools import islice
from pathlib import Path

from tessera.data.corpus import Corpus, open_corpus
from tessera.errors import CorpusError, TesseraError
from tessera.indexing import staging
from tessera.indexing.backends import Params, kind_of, validate_factory
from tessera.indexing.builder import DEFAULT_BATCH, _fingerprint, batches, publish_build, write_docids
from tessera.indexing.docstore import DocStore
from tessera.indexing.faiss_backend import create_index
from tessera.indexing.manifest import Manifest
from tessera.indexing.ray_encoding import RayBuildError, encode_shards, last_line, peak_rss_mib, plan_shards
from tessera.indexing.shard_index import build_merged, build_sharded, drop_scratch
from tessera.indexing.sharded_backend import FOLDER
from tessera.indexing.shards import mergeable
from tessera.indexing.tuning import tunable_parameter
from tessera.models.registry import canonical_spec, is_lexical
from tessera.progress import progress_bar

log = logging.getLogger(__name__)

SHARD_DOCS = 10_000  # default documents per shard: ~15 MiB of 384-d vectors, seconds to minutes of work
LAYOUTS = ("merged", "sharded")
TRIAL_DIMS = (384, 768, 1024, 1536)  # common encoder widths, to judge a factory before the encoder loads
INSTALL = "distributed indexing needs Ray: pip install 'tessera[dist]'"


def build_index_ray(
    corpus: str | Path,
    output: str | Path,
    encoder: str = "minilm",
    factory: str = "Flat",
    *,
    workers: int | None = None,
    shards: int | None = None,
    address: str | None = None,
    layout: str = "merged",
    search_params: Params | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> Path:
    """Index `corpus` into `output` with encoding spread over a Ray cluster; returns the path.

    `address` None starts a local Ray with `workers` CPUs (default: all); otherwise connects
    to that cluster. Interrupted builds resume (documents by batch, vectors by shard) when run
    again with the same arguments; bad input removes the staging directory."""
    spec = _check_request(encoder, factory, layout, workers, shards)
    ray = import_ray()
    target = staging.new_target(output, overwrite, inputs=(corpus,))
    source = open_corpus(corpus)
    key = f"ray|{factory}|{layout}|shards={shards}"
    root, progress = staging.stage(target, _fingerprint(source, spec, key, DEFAULT_BATCH))
    store = DocStore(root / DocStore.FILE)
    started = _connect(ray, address, workers)
    try:
        probe = ray.remote(num_cpus=1, max_calls=1)(describe_encoder).remote(spec)
        count = _store_documents(source, store, root, progress, show_progress)
        dim = _checked_dim(_described(ray, probe), spec, factory, layout)
        pool, gpus = _pool_size(ray, workers)
        plan = plan_shards(root, count, shards or max(pool, math.ceil(count / SHARD_DOCS)))
        records = encode_shards(ray, plan, root, spec, dim, pool, gpus, show_progress)
        files = [root / FOLDER / f"{shard.name}.f32" for shard in plan]
        manifest = Manifest(
            backend="sharded" if layout == "sharded" else kind_of(factory),
            encoder=spec,
            doc_count=count,
            corpus=source.name,
            dim=dim,
            factory=factory,
            search_params=dict(search_params or {}),
            shards=records,
        )
        build = build_sharded if layout == "sharded" else build_merged
        manifest.search_params, manifest.tuning = build(ray, root, plan, files, manifest, show_progress)
        drop_scratch(root, files, layout)
        write_docids(root, store)
        log.info("driver peak RSS %.0f MiB", peak_rss_mib())
        publish_build(root, target, store, manifest, overwrite)
    except RayBuildError:
        store.close()
        raise
    except TesseraError:
        store.close()
        staging.discard(root)
        raise
    finally:
        if started:
            ray.shutdown()
    return target


# ---------------------------------------------------------------------------------------------
# Checks and Ray set-up


def import_ray():
    """The `ray` module with Ray Data, or a TesseraError saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise TesseraError(INSTALL, field="ray") from None
    return ray


def _check_request(encoder: str, factory: str, layout: str, workers: int | None, shards: int | None) -> str:
    """Refuse what the distributed build does not do before anything starts."""
    spec = canonical_spec(encoder)
    if is_lexical(spec):
        raise TesseraError(
            f"--ray builds dense single-vector indexes; '{spec}' is lexical: index it without --ray",
            field="encoder",
        )
    if spec.startswith(("colbert:", "xtr:")):
        raise TesseraError(
            f"--ray builds dense single-vector indexes; '{spec}' makes token vectors: index it without --ray",
            field="encoder",
        )
    if layout not in LAYOUTS:
        raise TesseraError(f"layout must be merged or sharded, not '{layout}'", field="layout")
    for name, value in (("workers", workers), ("shards", shards)):
        if value is not None and value < 1:
            raise TesseraError("must be at least 1", field=name)
    if layout == "sharded":  # most factories' structure shows at any dimension: refuse before Ray starts
        _refuse_unshardable(factory, TRIAL_DIMS)
    return spec


def _connect(ray, address: str | None, workers: int | None) -> bool:
    """Join the given cluster, or start a local one; True when this call started Ray (and the
    build must shut it down). A Ray already initialised in this process is used as it is."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver's own bar counts documents
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    if ray.is_initialized():
        return False
    options = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
    if address is None:
        ray.init(address="local", num_cpus=workers or os.cpu_count(), **options)  # never a running one
    else:
        ray.init(address=address, **options)
    return True


def _pool_size(ray, workers: int | None) -> tuple[int, int]:
    """(actors, GPUs per actor): one actor per GPU where Ray sees GPUs, else one per CPU."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if workers is None:
        workers = gpus or max(1, int(resources.get("CPU", 1)))
    return workers, 1 if gpus else 0


def describe_encoder(spec: str) -> tuple[int, bool]:
    """(dimension, multi-vector) of an encoder, loaded in a Ray worker so the driver never holds
    the model (the worker exits afterwards: `max_calls=1`)."""
    from tessera.models.registry import load_encoder

    model = load_encoder(spec)
    return int(model.dim), bool(getattr(model, "multi_vector", False))


def _described(ray, probe) -> tuple[int, bool]:
    """The probe's answer; an encoder that fails to load fails the build with its own error
    (Ray wraps it with the worker's traceback)."""
    try:
        return ray.get(probe)
    except Exception as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, TesseraError):
            raise cause from None
        raise RayBuildError(f"could not load the encoder on the cluster: {last_line(exc)}") from exc


def _checked_dim(described: tuple[int, bool], spec: str, factory: str, layout: str) -> int:
    """The encoder's dimension, once the factory and layout are known to fit it."""
    dim, multi = described
    if multi:
        raise TesseraError(
            f"--ray builds dense single-vector indexes; '{spec}' makes token vectors", field="encoder"
        )
    validate_factory(factory, dim)
    if layout == "sharded":
        _refuse_unshardable(factory, (dim,))
    return dim


def _refuse_unshardable(factory: str, dims: tuple[int, ...]) -> None:
    """Refuse a factory whose shards searched one by one would not answer as the merged index,
    judged on the first of `dims` faiss builds it at (its structure does not depend on the
    dimension); one that faiss builds at none is left to the check at the encoder's dimension."""
    index = None
    if kind_of(factory) == "faiss":
        for dim in dims:
            try:
                index = create_index(dim, factory)
                break
            except TesseraError:
                continue
        else:
            return
    if index is None or not mergeable(index):
        what = (
            "HNSW graphs" if index is not None and tunable_parameter(index) == "efSearch" else f"'{factory}'"
        )
        raise TesseraError(
            f"layout sharded takes faiss Flat and IVF kinds: {what} searched shard by shard would "
            "not give the merged index's results; use --layout merged",
            field="layout",
        )


# ---------------------------------------------------------------------------------------------
# Phase 1: documents


def _store_documents(
    source: Corpus, store: DocStore, root: Path, progress: staging.Progress, show: bool
) -> int:
    """Write the doc store (same rows as the single-process build), resuming from the last
    checkpoint; returns the document count."""
    store.truncate(progress.done)
    with progress_bar(show) as bar:
        task = (
            bar.add_task(f"storing {source.name}", total=source.size_hint, completed=progress.done)
            if bar
            else None
        )
        for batch in batches(islice(iter(source), progress.done, None), DEFAULT_BATCH):
            store.add(progress.done, batch)
            progress.done += len(batch)
            progress.save(root)
            if bar:
                bar.advance(task, len(batch))
    if progress.done == 0:
        raise CorpusError(
            "corpus has no documents", file=source.name if source.kind != "ir_datasets" else None
        )
    return progress.done
