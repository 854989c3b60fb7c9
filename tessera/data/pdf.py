"""A PDF's text layer as one document (pypdf, pure Python).

Typeset text breaks words at line ends ("retrie-\\nval"); an index that keeps the halves never
matches the word, so a hyphen at a line end between two lower-case letters is joined. Pages are
separated by a form feed on a line of its own (`PAGE_BREAK`): whitespace to every tokenizer, a
paragraph break to sentence splitting (so RAG compression never runs across pages), and what
`page_of` counts to say which page a passage starts on.
A PDF without a text layer (a scan) gives empty text: the folder reader skips it with a warning.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tessera.data.markup import Extracted
from tessera.errors import CorpusError, TesseraWarning

_LINE_END_HYPHEN = re.compile(r"(?<=[a-z])-[ \t]*\r?\n[ \t]*(?=[a-z])")
# Title entries written by converters rather than authors ("Microsoft Word - draft.docx").
_GENERATED_TITLE = re.compile(
    r"^(microsoft \w+ - |untitled\b)|\.(docx?|pdf|tex|dvi|ps|rtf|odt|pptx?|indd|txt)$", re.IGNORECASE
)


PAGE_BREAK = "\n\f\n"


def page_of(text: str, offset: int) -> int | None:
    """The page (from 1) of a PDF document's text that character `offset` lies on; None for a
    text without page breaks (one page, or not from a PDF)."""
    return text.count("\f", 0, offset) + 1 if "\f" in text else None


def dehyphenate(text: str) -> str:
    """Join words a line break split with a hyphen; hyphens inside a line stay."""
    return _LINE_END_HYPHEN.sub("", text)


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.said: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.said.append(record.getMessage())


@contextmanager
def _pypdf_log() -> Iterator[list[str]]:
    """What pypdf logs while a file is read, kept (it printed "EOF marker not found" on its own,
    naming no file), to be said in one warning that names the file."""
    logger, kept = logging.getLogger("pypdf"), _Kept()
    propagate, logger.propagate = logger.propagate, False
    logger.addHandler(kept)
    try:
        yield kept.said
    finally:
        logger.removeHandler(kept)
        logger.propagate = propagate


def pdf_to_text(path: Path) -> Extracted:
    """Title: the document's Title entry when an author wrote it. Metadata: `pages`, and
    `author` when present. An unreadable or password-protected file is an error naming it."""
    from pypdf import PdfReader

    with _pypdf_log() as said:
        try:
            reader = PdfReader(path)
            if reader.is_encrypted and not reader.decrypt(""):
                raise CorpusError("is password-protected: decrypt it first (qpdf --decrypt)", file=path)
            pages = [dehyphenate(page.extract_text() or "").strip() for page in reader.pages]
            info = reader.metadata
        except CorpusError:
            raise
        except Exception as exc:  # a damaged file makes pypdf raise anything (AttributeError, ...)
            raise CorpusError(f"cannot be read as PDF ({type(exc).__name__}: {exc})", file=path) from None
    if said:  # read, with pypdf's repairs: what it said, in one line naming the file
        more = f" (and {len(said) - 1} more of its warnings)" if len(said) > 1 else ""
        warnings.warn(TesseraWarning(f"pypdf: {said[0]}{more}", file=path), stacklevel=2)
    title = " ".join(str((info.title if info else None) or "").split())
    if _GENERATED_TITLE.search(title):
        title = ""
    metadata: dict[str, object] = {"pages": len(pages)}
    author = " ".join(str((info.author if info else None) or "").split())
    if author:
        metadata["author"] = author
    text = PAGE_BREAK.join(pages) if any(pages) else ""  # empty pages kept: page_of counts them
    return Extracted(title, text, metadata)
