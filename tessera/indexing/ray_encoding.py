"""Phase 2 of a distributed build: the corpus's ordinals cut into shards, each encoded by a Ray
Data actor pool into `shards/NAME.f32` (indexing/distributed.py runs the phases).

An actor loads the encoder once (one GPU per actor where Ray sees GPUs, one CPU and one torch
thread otherwise), reads its shard's texts from the doc store the driver wrote, encodes them
(`builder.encode_sorted`) and writes the shard file atomically (`shards.write_shard`). A shard
whose file exists is complete and is not encoded again, so a killed driver resumes shard by
shard; actors restart and retry their task when a worker dies.
"""

from __future__ import annotations

import json
import logging
import math
import os
import resource
import signal
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tessera.data.document import Document
from tessera.errors import TesseraError
from tessera.indexing import staging
from tessera.indexing.builder import DEFAULT_BATCH, encode_sorted
from tessera.indexing.docstore import DocStore
from tessera.indexing.manifest import sha256_file
from tessera.indexing.sharded_backend import FOLDER
from tessera.indexing.shards import write_shard
from tessera.progress import progress_bar

log = logging.getLogger(__name__)

PLAN = "plan.json"
# Test hook: "SHARD:MARKER" makes the actor encoding shard SHARD SIGKILL itself once (the
# marker file records that it did), to check that a dead worker's shard is retried.
KILL_HOOK = "TESSERA_RAY_TEST_KILL"


@dataclass(frozen=True)
class Shard:
    """Ordinals [first, stop) of the corpus, encoded into `shards/NAME.f32`."""

    name: str
    first: int
    stop: int


class RayBuildError(TesseraError):
    """Ray failed mid-build: the staging directory is kept, so running again resumes."""


def plan_shards(root: Path, count: int, wanted: int) -> list[Shard]:
    """Contiguous shards of near-equal size; shard files of another plan (a resumed build with
    other --workers) are deleted, since their row ranges differ."""
    size = math.ceil(count / min(wanted, count))
    plan = [
        Shard(f"shard-{n:05d}", first, min(count, first + size))
        for n, first in enumerate(range(0, count, size))
    ]
    folder = root / FOLDER
    folder.mkdir(exist_ok=True)
    record = json.dumps([asdict(shard) for shard in plan])
    if not (folder / PLAN).is_file() or (folder / PLAN).read_text() != record:
        for stale in folder.iterdir():
            stale.unlink()
        staging.write_text_atomic(folder / PLAN, record)
    return plan


def _finished(root: Path, shard: Shard, dim: int) -> dict | None:
    """The manifest record of a shard already encoded, or None (a wrong-sized file is removed)."""
    path = root / FOLDER / f"{shard.name}.f32"
    if not path.is_file():
        return None
    if path.stat().st_size != (shard.stop - shard.first) * dim * 4:
        path.unlink()
        return None
    return {
        "name": shard.name,
        "first": shard.first,
        "rows": shard.stop - shard.first,
        "sha256": sha256_file(path),
    }


def encode_shards(
    ray, plan: list[Shard], root: Path, spec: str, dim: int, pool: int, gpus: int, show: bool
) -> list[dict]:
    """Encode every shard not yet on disk on an actor pool; returns all shards' records."""
    records = {shard.name: _finished(root, shard, dim) for shard in plan}
    todo = [asdict(shard) for shard in plan if records[shard.name] is None]
    done = sum(shard.stop - shard.first for shard in plan if records[shard.name] is not None)
    if done:
        log.warning("resuming: %d of %d shards already encoded", len(plan) - len(todo), len(plan))
    if todo:
        dataset = ray.data.from_items(todo, override_num_blocks=len(todo)).map_batches(
            ShardEncoder,
            batch_size=1,
            # One shard in flight per actor: otherwise the first actor up queues shards that
            # actors still loading the model would have taken.
            compute=ray.data.ActorPoolStrategy(size=min(pool, len(todo)), max_tasks_in_flight_per_actor=1),
            fn_constructor_kwargs={
                "spec": spec,
                "root": str(root),
                "dim": dim,
                "hook": os.environ.get(KILL_HOOK),
            },
            num_cpus=1,
            num_gpus=gpus,
            # Restartable actors: Ray Data's actor pools default to max_restarts=-1 and
            # max_task_retries=-1, so a dead worker's actor comes back and its shard is retried
            # (passing them explicitly is deprecated in Ray 2.60); tests/indexing kills one.
        )
        with progress_bar(show) as bar:
            total = plan[-1].stop
            task = bar.add_task(f"encoding {len(plan)} shards", total=total, completed=done) if bar else None
            try:
                for row in dataset.iter_rows():
                    records[row["name"]] = {k: _plain(row[k]) for k in ("name", "first", "rows", "sha256")}
                    log.info(
                        "%s: %d rows in %.1f s, actor peak RSS %.0f MiB",
                        row["name"],
                        row["rows"],
                        row["encode_s"],
                        row["rss_mib"],
                    )
                    if bar:
                        bar.advance(task, int(row["rows"]))
            except Exception as exc:  # Ray wraps worker errors in its own types
                raise RayBuildError(
                    f"distributed encoding failed (run again to resume): {last_line(exc)}"
                ) from exc
    return [records[shard.name] for shard in plan]


class ShardEncoder:
    """A Ray Data actor: loads the encoder once, then turns shard descriptors into shard files."""

    def __init__(self, spec: str, root: str, dim: int, hook: str | None = None):
        import torch

        from tessera.models.registry import load_encoder

        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) if _on_gpu() else 1))
        self.model = load_encoder(spec)
        self.root, self.dim, self.hook = Path(root), dim, hook

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        out: dict[str, list] = {key: [] for key in ("name", "first", "rows", "sha256", "rss_mib", "encode_s")}
        for name, first, stop in zip(batch["name"], batch["first"], batch["stop"], strict=True):
            shard = Shard(str(name), int(first), int(stop))
            started = time.perf_counter()
            record = _finished(self.root, shard, self.dim) or self._encode(shard)
            for key in ("name", "first", "rows", "sha256"):
                out[key].append(record[key])
            out["rss_mib"].append(peak_rss_mib())
            out["encode_s"].append(time.perf_counter() - started)
        return out

    def _encode(self, shard: Shard) -> dict:
        texts = shard_texts(self.root / DocStore.FILE, shard.first, shard.stop)
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), DEFAULT_BATCH):
            encoded = encode_sorted(self.model, texts[start : start + DEFAULT_BATCH], lambda n: None)
            vectors[start : start + len(encoded)] = encoded
        self._maybe_die(shard)
        digest = write_shard(self.root / FOLDER / f"{shard.name}.f32", vectors)
        return {"name": shard.name, "first": shard.first, "rows": len(texts), "sha256": digest}

    def _maybe_die(self, shard: Shard) -> None:
        """The test hook (KILL_HOOK): SIGKILL this worker once, on the named shard."""
        if not self.hook:
            return
        number, _, marker = self.hook.partition(":")
        if shard.name == f"shard-{int(number):05d}" and not Path(marker).exists():
            Path(marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)


def shard_texts(path: Path, first: int, stop: int) -> list[str]:
    """What the encoder sees of documents [first, stop), read from the doc store (read-only)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT id, title, text FROM docs WHERE ordinal >= ? AND ordinal < ? ORDER BY ordinal",
            (first, stop),
        ).fetchall()
    finally:
        db.close()
    if len(rows) != stop - first:
        raise TesseraError(f"doc store holds {len(rows)} of documents {first}..{stop - 1}", file=path)
    return [Document(id=doc_id, title=title, text=text).contents for doc_id, title, text in rows]


def _on_gpu() -> bool:
    """Whether Ray gave this actor a GPU (then its torch CPU threads are the node's to use)."""
    return bool(os.environ.get("CUDA_VISIBLE_DEVICES"))


def peak_rss_mib() -> float:
    """This process's peak resident set size (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _plain(value):
    """A numpy scalar from a Ray Data row as a JSON-ready Python value."""
    return value.item() if hasattr(value, "item") else value


def last_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
