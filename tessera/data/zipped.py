"""Parts of a zip-packaged document (Word, EPUB), read with a bound on what they inflate to.

A crafted archive can declare a small part that inflates to gigabytes: a part whose declared
size passes `MAX_PART_BYTES` is refused before it is read, naming the file. XML parts are
parsed with ElementTree, whose expat refuses entity expansion attacks (Python 3.11 ships expat
>= 2.4.1). Office writes some content twice, a modern version and a fallback copy for older
readers (`mc:AlternateContent`: text boxes, shapes); the fallback copies are dropped, so the
text is read once."""

from __future__ import annotations

import warnings
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from xml.etree import ElementTree

from tessera.errors import CorpusError, TesseraWarning

MAX_PART_BYTES = 256 * 2**20
FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
# What a damaged or unsupported zip raises while a part is read: bad deflate data, a truncated
# member, an encrypted one (RuntimeError), a compression method or version zipfile lacks.
BROKEN = (
    zipfile.BadZipFile,
    ElementTree.ParseError,
    OSError,
    zlib.error,
    EOFError,
    RuntimeError,
    NotImplementedError,
)


def read_part(archive: zipfile.ZipFile, name: str, path: Path) -> bytes | None:
    """The bytes of part `name`, None when the archive has no such part."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    if info.file_size > MAX_PART_BYTES:
        raise CorpusError(f"{name} would inflate to {info.file_size:,} bytes; refused", file=path)
    return archive.read(name)


def xml_part(archive: zipfile.ZipFile, name: str, path: Path) -> ElementTree.Element | None:
    """Part `name` parsed as XML, None when the archive has no such part."""
    raw = read_part(archive, name, path)
    if raw is None:
        return None
    root = ElementTree.fromstring(raw)
    for parent in [node for node in root.iter() if node.find(FALLBACK) is not None]:
        for fallback in parent.findall(FALLBACK):
            parent.remove(fallback)
    return root


@contextmanager
def opened(path: Path, what: str) -> Iterator[zipfile.ZipFile]:
    """`path` open as a zip; a file that is not one, or an XML part that does not parse, is a
    CorpusError naming the file: "cannot be read as `what` (...)". A reader's own
    CorpusErrors pass through."""
    try:
        with zipfile.ZipFile(path) as archive:
            yield archive
    except BROKEN as exc:
        raise CorpusError(f"cannot be read as {what} ({type(exc).__name__}: {exc})", file=path) from None


def missing_parts(path: Path, what: str, names: list[str]) -> None:
    """Warn, naming the file, of parts a document lists but lacks (an EPUB's chapters, a deck's
    slides): read without them, not silently."""
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    warnings.warn(TesseraWarning(f"{what}: {shown}; read without them", file=path), stacklevel=3)
