"""Durable publication shared by every layer that writes folders (data outputs, indexes)."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from tessera.errors import TesseraError


def write_text_atomic(path: Path, text: str) -> None:
    """`path` holds the old text or all of `text`, never part of it (write, fsync, rename); its
    folder is made when missing, as a run file's is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)


class JsonLines:
    """Rows appended durably, one JSON object per line, so that an interrupted job resumes from
    the rows it finished: a last line cut off by a crash is dropped when the file is read."""

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> list[dict]:
        if not self.path.is_file():
            return []
        raw = self.path.read_bytes()
        complete = raw[: raw.rfind(b"\n") + 1]
        if len(complete) != len(raw):
            with self.path.open("r+b") as handle:
                handle.truncate(len(complete))
        rows = []
        for number, line in enumerate(complete.split(b"\n")[:-1], start=1):
            try:
                row = json.loads(line)
            except ValueError:  # bad JSON or bad UTF-8
                raise TesseraError("not a JSON line", file=self.path, line=number) from None
            if not isinstance(row, dict):
                raise TesseraError("expected a JSON object", file=self.path, line=number)
            rows.append(row)
        return rows

    def append(self, rows: Iterable[dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in rows)
            handle.flush()
            os.fsync(handle.fileno())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def fsync_tree(root: Path) -> None:
    """Flush every file and folder under `root` so a rename publishes durable bytes."""
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two existing paths in one step (Linux `renameat2(RENAME_EXCHANGE)`); False where
    the C library or the file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def publish_dir(stage: Path, target: Path, overwrite: bool) -> None:
    """Flush `stage` and rename it onto `target` (an existing `target` only with `overwrite`),
    so `target` is always absent, the old folder, or complete. An existing `target` is
    exchanged with `stage` in one step where Linux allows it (readers always find one of the
    two), else swapped by two renames (absent for a moment; the old folder is `.old-PID`)."""
    fsync_tree(stage)
    if target.exists():
        if not overwrite:
            raise TesseraError("already exists (use --overwrite to replace it)", file=target)
        if _exchange(stage, target):
            shutil.rmtree(stage)  # now the old folder
            return
        retired = target.with_name(f"{target.name}.old-{os.getpid()}")
        target.rename(retired)
        stage.rename(target)
        shutil.rmtree(retired)
    else:
        stage.rename(target)


def check_output_file(path: str | Path | None, field: str) -> None:
    """Refuse, before any work, an output file that cannot or must not be written: an existing
    folder (the rename would fail after the work), or a file inside an index's folder (a run
    written as `manifest.json` would break the index)."""
    if path is None:
        return
    path = Path(path).expanduser()
    if path.is_dir():
        raise TesseraError("is a folder: name the file to write", file=path, field=field)
    check_parents(path, field)
    if all((path.parent / name).is_file() for name in ("manifest.json", "docstore.sqlite")):  # an index
        raise TesseraError("is inside an index's folder: write it elsewhere", file=path, field=field)


def check_outputs(outputs: Mapping[str, str | Path | None], inputs: Iterable[str | Path] = ()) -> None:
    """`check_output_file` for each of a job's output files (field -> path), and refuse, before
    any work, an output that is one of the job's inputs or an existing file inside an input
    folder (a dataset's `queries.jsonl` written as a run), or that two outputs share one path:
    the second write would replace the first's, or the job would replace what it read."""
    paths = [Path(given).expanduser() for given in inputs]
    sources = [(source, source.resolve()) for source in paths if source.exists()]
    written: dict[Path, str] = {}
    for field, path in outputs.items():
        if path is None:
            continue
        check_output_file(path, field)
        target = Path(path).expanduser().resolve()
        if target in written:
            raise TesseraError(
                f"is also the {written[target]} output: name another file", file=path, field=field
            )
        written[target] = field
        for source, resolved in sources:
            if target == resolved or (target.exists() and resolved in target.parents):
                what = "is the input" if target == resolved else "is a file of the input folder"
                raise TesseraError(
                    f"{what} '{source}': writing here would replace it", file=path, field=field
                )


def check_parents(path: Path, field: str = "output") -> None:
    """Refuse an output whose nearest existing parent is a file (made a folder, it fails with
    "[Errno 17] File exists", naming neither the file nor the option)."""
    for parent in Path(path).expanduser().absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise TesseraError(f"'{parent}' is a file, not a folder", file=path, field=field)
            return


def _not_owned(target: Path, owned: set[str]) -> list[str]:
    """Paths under `target` (relative, `/`-separated, symlinks not followed) that are neither
    in `owned` nor a folder holding an owned path."""
    folders = {str(Path(name).parent) for name in owned} - {"."}
    found = []
    for root, dirs, files in os.walk(target):
        for name in sorted(dirs + files):
            relative = (Path(root) / name).relative_to(target).as_posix()
            if relative not in owned and relative not in folders:
                found.append(relative)
        dirs[:] = [name for name in dirs if (Path(root) / name).relative_to(target).as_posix() in folders]
    return sorted(found)


def new_target(
    output: str | Path,
    overwrite: bool,
    inputs: Iterable[str | Path] = (),
    marker: tuple[str, str] | None = None,
    owned: Iterable[str] = (),
) -> Path:
    """The resolved target folder; an existing one is refused unless `overwrite`, and one that is
    or holds an input of the job (`inputs`: paths or dataset names) is refused always, since
    publishing would delete what is being read. `marker` (file, what): `overwrite` replaces only
    an empty folder or one holding that file (what this kind of job writes), never other files;
    with `owned` (the names such a job writes), not one holding anything else either (a user's
    notes or indexes kept inside a dataset folder were deleted with it)."""
    check_parents(Path(output))
    target = Path(output).expanduser().resolve()
    for given in inputs:
        source = Path(given).expanduser()
        if source.exists() and (target == source.resolve() or target in source.resolve().parents):
            raise TesseraError(f"holds the input '{given}', which writing here would delete", file=target)
    if marker and (
        target.is_file() or (target.is_dir() and not (target / marker[0]).is_file() and any(target.iterdir()))
    ):  # said first: "use --overwrite" would only lead to this refusal
        raise TesseraError(
            f"is not {marker[1]} (no {marker[0]}): --overwrite replaces {marker[1]}, nothing else; "
            "choose another output",
            file=target,
        )
    if target.exists() and not overwrite:
        raise TesseraError("already exists (use --overwrite to replace it)", file=target)
    foreign = _not_owned(target, set(owned)) if owned and target.is_dir() else []
    if foreign:
        raise TesseraError(
            f"holds '{foreign[0]}'{f' and {len(foreign) - 1} more' if len(foreign) > 1 else ''}, which "
            f"--overwrite would delete with it: it replaces {marker[1] if marker else 'the folder'} "
            "only when nothing else is inside",
            file=target,
        )
    return target
