"""Build directories: staged beside the target, checkpointed, published by one rename.

A build works in `DIR.tmp-<pid>`. After every batch it records how many documents are
durable in `progress.json`; a later build of the same inputs (same fingerprint) adopts a
staging directory whose owner is dead and continues from there. Publishing renames the
finished directory onto `DIR`, so `DIR` is always either absent, the old index, or complete.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from tessera import durable
from tessera.durable import publish_dir, write_text_atomic
from tessera.errors import TesseraError
from tessera.indexing.manifest import MANIFEST, Manifest, utc_now

PROGRESS = "progress.json"


@dataclass
class Progress:
    fingerprint: str
    done: int = 0

    def save(self, root: Path) -> None:
        write_text_atomic(root / PROGRESS, json.dumps(asdict(self)))


def _owner_alive(staging: Path) -> bool:
    return pid_alive(int(staging.name.rsplit("-", 1)[-1]))


def pid_alive(pid: int) -> bool:
    """Whether another process of that id runs (this process's own files count as abandoned)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def new_target(output: str | Path, overwrite: bool, inputs: Iterable[str | Path] = ()) -> Path:
    """An index's target folder (`durable.new_target`); `overwrite` replaces an index, never a
    folder of something else (a corpus, a user's files), which is refused."""
    return durable.new_target(output, overwrite, inputs, marker=(MANIFEST, "a Tessera index"))


def stage(target: Path, fingerprint: str) -> tuple[Path, Progress]:
    """A staging directory for `target`: an abandoned one with the same inputs, or a new one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    mine = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    for candidate in sorted(target.parent.glob(f"{target.name}.tmp-*")):
        if not candidate.name.rsplit("-", 1)[-1].isdigit():
            continue
        try:
            progress = Progress(**json.loads((candidate / PROGRESS).read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if progress.fingerprint != fingerprint:
            continue
        if _owner_alive(candidate):
            raise TesseraError("another build of this index is running", file=candidate)
        if candidate != mine:
            candidate.rename(mine)
        return mine, progress
    if mine.exists():
        shutil.rmtree(mine)
    mine.mkdir()
    progress = Progress(fingerprint)
    progress.save(mine)
    return mine, progress


@contextmanager
def locked(root: Path) -> Iterator[None]:
    """One writer at a time per index: an update (indexing/updates.py) holds it from reading the
    index to publishing the new one, and a build or derived index replacing the index waits for
    it to publish (an `index --overwrite` published during an `add` left the add to finish on the
    rebuilt files: a manifest of 500 documents over 310 vectors). A lock file beside the index;
    readers never wait. A thread holding it enters again at once (an update publishes under it)."""
    key = str(Path(root).resolve())
    held = _held.__dict__.setdefault("paths", set())
    if key in held:
        yield
        return
    with open(root.with_name(f"{root.name}.lock"), "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


_held = threading.local()  # the index paths this thread holds `locked`


def publish(staging: Path, target: Path, overwrite: bool, tidy: bool = True) -> None:
    """Make the finished build visible at `target` in one rename (replacing an old index under
    its lock, so never in the middle of an update), and remove the staging folders of killed
    writers into it. `tidy=False` (an update of the index) keeps those of interrupted builds,
    which can resume: one may be an `index --overwrite` its user means to run again."""
    (staging / PROGRESS).unlink(missing_ok=True)
    with locked(target) if (target / MANIFEST).is_file() else nullcontext():
        publish_dir(staging, target, overwrite)
    for abandoned in target.parent.glob(f"{target.name}.tmp-*"):
        resumable = (abandoned / PROGRESS).is_file()
        if (
            abandoned.name.rsplit("-", 1)[-1].isdigit()
            and not _owner_alive(abandoned)
            and (tidy or not resumable)
        ):
            discard(abandoned)


def discard(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)


def write_derived(
    source: Path,
    target: Path,
    copy: Iterable[str],
    fill: Callable[[Path], Manifest],
    overwrite: bool = False,
) -> Path:
    """Publish an index derived from `source` (reindexed, retrained) at `target`.

    The files named in `copy` come over unchanged; `fill(root)` writes the rest into the
    staging directory and returns the new manifest, whose checksums are recorded here. Any
    failure, an interrupt included, leaves `target` as it was.
    """
    root = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    discard(root)
    root.mkdir(parents=True)
    try:
        for name in copy:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, root / name)
        manifest = replace(fill(root), files={}, created_at=utc_now())
        manifest.record_files(root)
        manifest.write(root)
        publish(root, target, overwrite, tidy=source != target)  # an update: `publish`
    except BaseException:
        discard(root)
        raise
    return target
