"""ir_datasets, offline: hand it local copies the way it expects them.

ir_datasets downloads each collection into `$IR_DATASETS_HOME/<name>/<cache_path>` and
skips the download when that file exists. So for every download listed in its own
`downloads.json`, the matching file from `TESSERA_DATA_DIR/<name>/` is linked into that
place (or, for a `.tar.gz` whose loose members are all that is there, packed into one).
Its own parsers then read the real files; nothing of its API is imitated.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from types import ModuleType

from tessera import config
from tessera.errors import DatasetError


def _short(exc: BaseException) -> str:
    """A failed download names its URL, not urllib3's retry chain; ir_datasets' "All download
    sources failed" its message, not every source's retry chain; anything else as it is."""
    url = getattr(getattr(exc, "request", None), "url", None)
    if url:
        return f"{type(exc).__name__} fetching {url}"
    message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    return f"{type(exc).__name__}: {message}"


@contextmanager
def offline_read(dataset_id: str, field: str) -> Iterator[None]:
    """Reading an id whose files are not here makes ir_datasets try its downloads, which fail
    offline with OSError, ConnectionError or RuntimeError ("All download sources failed"): one
    error saying where the original files go instead, for every reader of ids."""
    try:
        yield
    except (OSError, ConnectionError, RuntimeError) as exc:
        raise DatasetError(
            f"ir_datasets could not read '{dataset_id}' offline ({_short(exc)}); "
            f"put its original files in TESSERA_DATA_DIR/{dataset_id.split('/')[0]}/",
            field=field,
        ) from None


@cache
def ir_datasets() -> ModuleType:
    """Import ir_datasets with its home under Tessera's cache (unless the user chose one).

    ir_datasets fixes each collection's folder at import, so the home is only chosen when
    nobody imported it before; `place_local_copies` then asks ir_datasets where it looks.
    """
    if "ir_datasets" not in sys.modules:
        os.environ.setdefault("IR_DATASETS_HOME", str(config.cache_dir() / "ir_datasets"))
    import ir_datasets as package

    from tessera.data import glasgow

    glasgow.register(config.data_dir())
    return package


def _downloads(top: str) -> Iterator[dict]:
    """Every download entry ir_datasets lists for the collection `top`."""
    table = json.loads((Path(ir_datasets().__file__).parent / "etc" / "downloads.json").read_text())

    def walk(node: object) -> Iterator[dict]:
        if isinstance(node, dict):
            if "cache_path" in node:
                yield node
            else:
                for child in node.values():
                    yield from walk(child)

    yield from walk(table.get(top, {}))


def _pack_members(archive: Path, members: list[Path]) -> None:
    partial = archive.with_name(archive.name + f".tmp-{os.getpid()}")
    with tarfile.open(partial, "w:gz", dereference=True) as tar:  # members are files, never links
        for member in members:
            tar.add(member, arcname=member.name)
    partial.replace(archive)


def place_local_copies(dataset_id: str) -> None:
    """Link `TESSERA_DATA_DIR/<top>/` files to where ir_datasets looks for its downloads."""
    top = dataset_id.split("/")[0]
    local = config.data_dir() / top
    if not local.is_dir():
        return
    home = Path(ir_datasets().util.home_path()) / top
    for entry in _downloads(top):
        target = home / entry["cache_path"]
        if target.exists():
            continue
        source = local / Path(entry["cache_path"]).name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_file():
            target.symlink_to(source.resolve())
        elif target.name.endswith((".tar.gz", ".tgz")):
            loose = sorted(p for p in local.iterdir() if p.is_file() and p.name != "PROVENANCE.md")
            if loose:
                _pack_members(target, loose)


def load(dataset_id: str):
    """`ir_datasets.load` after placing local copies; unknown ids raise `DatasetError`."""
    package = ir_datasets()
    if dataset_id not in package.registry:
        close = difflib.get_close_matches(dataset_id, list(package.registry), n=4, cutoff=0.75)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        if not config.data_dir().is_dir():  # a mistyped TESSERA_DATA_DIR, not a mistyped id
            hint += f"; the data folder '{config.data_dir()}' (TESSERA_DATA_DIR) does not exist"
        raise DatasetError(f"unknown dataset id '{dataset_id}'{hint}", field="dataset")
    place_local_copies(dataset_id)
    return package.load(dataset_id)


def is_known(dataset_id: str) -> bool:
    return dataset_id in ir_datasets().registry
