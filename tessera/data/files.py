"""A folder of files as a corpus: text, Markdown, HTML, PDF, Word, PowerPoint, OpenDocument, EPUB
and Jupyter notebooks, one document per file.

What users of LlamaIndex's SimpleDirectoryReader point an index at: notes, docs sites, papers.
A document's id is its path relative to the folder without the suffix (`notes/intro` for
notes/intro.md), so two files that would share an id are an error naming both. Its title and
text come from the file's own markup (data/markup.py, pdf.py, docx.py, pptx.py, opendocument.py,
epub.py, notebook.py); its metadata, which filters select by, holds `path`, `format` (text,
markdown, html, pdf, docx, pptx, odt, odp, epub, notebook), `modified` (the file's UTC
modification time, ISO 8601, which compares as text), `pages` (PDF), `slides` (PowerPoint),
`chapters` (EPUB), `cells` and `language` (notebooks), `author` (PDF, Word, PowerPoint,
OpenDocument, EPUB) and a Markdown front matter's flat fields. Linked folders are followed
(each real folder read once, so a link loop ends). Hidden files and folders (.git, .obsidian),
Office's owner files (`~$report.docx`, beside a document open in Word) and Tessera index folders
(one built inside the folder it indexes) are not read, nor the files a `.tesseraignore` in the
folder names (gitignore's simple patterns); files of other kinds, files whose names are not
UTF-8, and files with no text (empty, a scanned PDF) are listed in one warning each.
"""

from __future__ import annotations

import datetime
import fnmatch
import os
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from tessera.data.document import Document
from tessera.data.docx import docx_to_text
from tessera.data.epub import epub_to_text
from tessera.data.markup import Extracted, decode_html, html_to_text, markdown_to_text
from tessera.data.notebook import notebook_to_text
from tessera.data.opendocument import opendocument_to_text
from tessera.data.pdf import pdf_to_text
from tessera.data.pptx import pptx_to_text
from tessera.errors import CorpusError, TesseraWarning

FORMATS: dict[str, str] = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".odt": "odt",
    ".odp": "odp",
    ".epub": "epub",
    ".ipynb": "notebook",
}
_NAMED = 5  # files named in a warning before "and N more"
# A file modified this recently when read gets no stamp: a later edit within the clock's
# granularity (2 s on FAT, 1 s on some network mounts) could leave size and time as they were.
SETTLED_NS = 2_000_000_000


def _listing(paths: list[Path], root: Path) -> str:
    names = [path.relative_to(root).as_posix() for path in paths[:_NAMED]]
    more = f" and {len(paths) - _NAMED} more" if len(paths) > _NAMED else ""
    return ", ".join(names) + more


def document_id(path: Path, root: Path) -> str:
    """`sub/name` for root/sub/name.md: stable across runs and readable in a hit."""
    return path.relative_to(root).with_suffix("").as_posix()


IGNORE_FILE = ".tesseraignore"


def ignore_patterns(root: Path) -> list[str]:
    """`root/.tesseraignore`: one pattern a line, `#` comments (gitignore's simple forms)."""
    path = root / IGNORE_FILE
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether a file's path (from the folder, with /) matches a pattern, as in gitignore: one
    without a slash matches a name at any depth (`*.log`), one with a slash the path from the
    folder (`notes/*.md`: `*` never crosses a slash, `**` any number of folders), one ending in
    a slash a whole folder (`drafts/`); a pattern matching a folder leaves out what it holds.
    The last pattern that matches decides: `!PATTERN` takes back what an earlier one left out
    (`*.log` then `!keep.log`); a leading backslash makes `#` or `!` a name's own character."""
    parts = relative.split("/")
    left_out = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern[1:] if negated or pattern.startswith("\\") else pattern
        if _pattern_matches(parts, pattern):
            left_out = not negated
    return left_out


def _pattern_matches(parts: list[str], pattern: str) -> bool:
    folder_only = pattern.endswith("/")
    pattern = pattern.rstrip("/")
    anchored = "/" in pattern
    wanted = pattern.lstrip("/").split("/")
    ends = range(1, len(parts)) if folder_only else range(1, len(parts) + 1)  # folders; or the file too
    for end in ends:
        if anchored and _matches(parts[:end], wanted):
            return True
        if not anchored and fnmatch.fnmatchcase(parts[end - 1], pattern):
            return True
    return False


def _matches(parts: list[str], pattern: list[str]) -> bool:
    """Path parts against pattern parts, each by fnmatch; `**` stands for any number of parts."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_matches(parts[start:], pattern[1:]) for start in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and _matches(parts[1:], pattern[1:])


def _walk(root: Path) -> Iterator[Path]:
    """Every file under `root` but hidden ones, Office owner files and index folders, through
    linked folders too, each real folder once (a link loop ends). A folder is read at its own
    path when it has one under `root`, never at a link's to it, whatever sorts first: its ids
    then do not change when a link to it comes or goes."""
    own: set[tuple[int, int]] = set()
    for folder, folders, names in os.walk(root):  # links to folders not followed
        own.add(_identity(folder))
        yield from _shown(Path(folder), folders, names)
    through_links: set[tuple[int, int]] = set()
    for folder, folders, names in os.walk(root, followlinks=True):
        identity = _identity(folder)
        if identity in through_links:
            folders[:] = []
            continue
        through_links.add(identity)
        files = list(_shown(Path(folder), folders, names))
        if identity not in own:  # reached by a link only: read at the link's path
            yield from files


def _identity(folder: str) -> tuple[int, int]:
    status = os.stat(folder)
    return status.st_dev, status.st_ino


def _shown(here: Path, folders: list[str], names: list[str]) -> Iterator[Path]:
    """The files of one folder worth a look; its subfolders to walk are pruned in place (hidden
    ones and index folders out)."""
    shown = [name for name in folders if not name.startswith(".")]
    indexes = {name for name in shown if _is_index(here / name)}
    folders[:] = sorted(name for name in shown if name not in indexes)
    locks = {name + ".lock" for name in indexes}  # an index's update lock lies beside it
    for name in names:
        if not name.startswith((".", "~$")) and name not in locks:
            yield here / name


def _is_index(path: Path) -> bool:
    """A Tessera index folder (its manifest and doc store): never read as documents."""
    return (path / "manifest.json").is_file() and (path / "docstore.sqlite").is_file()


def folder_files(root: Path) -> list[Path]:
    """The files under `root` Tessera reads, sorted; hidden ones and those `.tesseraignore`
    names are left out quietly, other kinds with a warning."""
    files, others, undecodable, unreadable = [], [], [], []
    patterns = ignore_patterns(root)
    for path in sorted(_walk(root)):
        relative = path.relative_to(root)
        if patterns and ignored(relative.as_posix(), patterns):
            continue
        if not path.is_file():  # a link to nothing, a pipe, a socket: left out without a word before
            unreadable.append(path)
            continue
        if not _utf8(relative.as_posix()):
            undecodable.append(path)
            continue
        (files if path.suffix.lower() in FORMATS else others).append(path)
    if undecodable:
        names = ", ".join(ascii(path.relative_to(root).as_posix()) for path in undecodable[:_NAMED])
        warnings.warn(
            TesseraWarning(
                f"{len(undecodable)} files were left out because their names are not UTF-8 "
                f"(an id must be text; rename them): {names}",
                file=root,
            ),
            stacklevel=2,
        )
    if unreadable:
        warnings.warn(
            TesseraWarning(
                f"{len(unreadable)} entries are not files to read (a link to nothing, a pipe, a socket) "
                f"and were left out: {_listing(unreadable, root)}",
                file=root,
            ),
            stacklevel=2,
        )
    if others:
        kinds = Counter(path.suffix.lower() or "(no suffix)" for path in others)
        summary = ", ".join(f"{kind} {count}" for kind, count in kinds.most_common())
        warnings.warn(
            TesseraWarning(
                f"{len(others)} files of kinds Tessera does not read were left out ({summary}): "
                f"{_listing(others, root)}; it reads {', '.join(FORMATS)}",
                file=root,
            ),
            stacklevel=2,
        )
    seen: dict[str, Path] = {}
    clashes = []  # every one at once: one a run made each rename a rerun away from the next
    for path in files:
        doc_id = document_id(path, root)
        if doc_id in seen:
            clashes.append((seen[doc_id], path, doc_id))
        seen[doc_id] = path
    if clashes:
        first, other, doc_id = clashes[0]
        more = f" (clashing too: {_listing([p for _, p, _ in clashes[1:]], root)})"
        raise CorpusError(
            f"'{first.name}' and '{other.name}' would both be document '{doc_id}': rename one"
            + (more if len(clashes) > 1 else ""),
            file=other.parent,
        )
    return files


def _utf8(name: str) -> bool:
    """A file name the file system gave as UTF-8 (others come as surrogate escapes)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _decode_text(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CorpusError(f"not valid UTF-8 at byte {exc.start}", file=path, line=line) from None


# Kinds whose reader opens the file itself (a zip of parts, or a PDF); the rest are text.
PACKAGED = {
    "pdf": pdf_to_text,
    "docx": docx_to_text,
    "pptx": pptx_to_text,
    "odt": opendocument_to_text,
    "odp": opendocument_to_text,
    "epub": epub_to_text,
}


def extract(path: Path) -> Extracted:
    """One file's title, text and format-specific metadata, by its suffix."""
    kind = FORMATS[path.suffix.lower()]
    if kind in PACKAGED:
        return PACKAGED[kind](path)
    raw = path.read_bytes()
    if kind == "html":
        return html_to_text(decode_html(raw, path))
    text = _decode_text(raw, path)
    if kind == "notebook":
        return notebook_to_text(text, path)
    return markdown_to_text(text, path) if kind == "markdown" else Extracted("", text.strip())


def file_stamp(status: os.stat_result, now_ns: int | None = None) -> str | None:
    """`size:mtime_ns` of a file settled before it is read (rsync's quick check: a file whose
    size and modification time are unchanged is taken as unchanged); None for one modified
    within `SETTLED_NS`, which a sync must read again."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    if now_ns - status.st_mtime_ns < SETTLED_NS:
        return None
    return f"{status.st_size}:{status.st_mtime_ns}"


def read_file(path: Path, root: Path) -> Document:
    """One file as a Document (its text may be empty; `read_folder` skips those). The file is
    looked at before it is read, so an edit made while it is read shows as a change later."""
    status = path.stat()
    extracted = extract(path) if status.st_size else Extracted("", "")  # an empty file: "no text"
    modified = datetime.datetime.fromtimestamp(status.st_mtime, datetime.UTC)
    metadata = {
        **extracted.metadata,
        "path": path.relative_to(root).as_posix(),
        "format": FORMATS[path.suffix.lower()],
        "modified": modified.isoformat(timespec="seconds"),
    }
    return Document(
        id=document_id(path, root),
        text=extracted.text,
        title=extracted.title,
        file=str(path),
        line=1,
        metadata=metadata,
        stamp=file_stamp(status),
    )


def read_folder(root: Path, files: Iterable[Path] | None = None) -> Iterator[Document]:
    """Every readable file under `root` (or those of `files`, which may be a stream) as a
    Document, in path order; files without text, and files deleted after the folder was listed
    (a live folder), are skipped and named in one warning each at the end."""
    empty, gone = [], []
    for path in folder_files(root) if files is None else files:
        try:
            document = read_file(path, root)
        except FileNotFoundError:
            gone.append(path)
            continue
        if document.contents.strip():
            yield document
        else:
            empty.append(path)
    if empty:
        warnings.warn(
            TesseraWarning(
                f"{len(empty)} files have no text and were left out (empty, or a scanned PDF without a "
                f"text layer: OCR it first): {_listing(empty, root)}",
                file=root,
            ),
            stacklevel=2,
        )
    if gone:
        warnings.warn(
            TesseraWarning(
                f"{len(gone)} files were deleted while being read: {_listing(gone, root)}", file=root
            ),
            stacklevel=2,
        )
