"""A Jupyter notebook's (.ipynb, nbformat 4) text as one document.

The notebook is rewritten as the Markdown document it reads as, its Markdown cells as they are
and its code cells as fenced blocks (a fence longer than any backtick run in the code), and
read by the Markdown reader (data/markup.py): so a notebook's title is its metadata `title`,
else its first level-1 heading, as for a .md file, and code is searchable text. Outputs are
not read (images, tables of numbers, tracebacks: not what the notebook says), nor raw cells.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tessera.data.markup import Extracted, markdown_to_text
from tessera.errors import CorpusError

_BACKTICKS = re.compile(r"`+")


def _source(cell: dict, number: int, path: Path) -> str:
    """A cell's text: nbformat's `source` is a string or a list of lines (a null or a number,
    which a damaged notebook holds, was read as the text "None" or "5")."""
    source = cell.get("source", "")
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        return "".join(source)
    if not isinstance(source, str):
        raise CorpusError(
            f"is not an nbformat 4 notebook: cell {number}'s `source` is {json.dumps(source)[:40]}, "
            "neither text nor a list of lines",
            file=path,
        )
    return source


def _fenced(code: str, language: str) -> str:
    longest = max((len(run) for run in _BACKTICKS.findall(code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{code}\n{fence}"


def notebook_to_text(raw: str, path: Path) -> Extracted:
    """Title as above; text: the Markdown cells' text and the code cells' code, in order.
    Metadata: `language` (the kernel's), `cells` (Markdown and code cells with text)."""
    try:
        notebook = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CorpusError(
            f"is not a notebook: malformed JSON ({exc.msg})", file=path, line=exc.lineno
        ) from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise CorpusError(
            "is not an nbformat 4 notebook (no `cells` list; convert an older one with "
            "`jupyter nbconvert --to notebook`)",
            file=path,
        )
    info = notebook.get("metadata") if isinstance(notebook.get("metadata"), dict) else {}
    kernel = info.get("kernelspec") if isinstance(info.get("kernelspec"), dict) else {}
    language_info = info.get("language_info") if isinstance(info.get("language_info"), dict) else {}
    language = str(kernel.get("language") or language_info.get("name") or "")
    blocks = []
    for number, cell in enumerate(notebook["cells"], start=1):
        kind = cell.get("cell_type") if isinstance(cell, dict) else None
        source = _source(cell, number, path).strip() if kind in ("markdown", "code") else ""
        if source:
            blocks.append(source if kind == "markdown" else _fenced(source, language))
    extracted = markdown_to_text("\n\n".join(blocks), path)
    title, text = " ".join(str(info.get("title") or "").split()), extracted.text
    if not title:
        title = extracted.title
    elif extracted.title and extracted.title != title:  # the heading the reader took stays text
        text = f"{extracted.title}\n{text}"
    metadata: dict = {"cells": len(blocks)}
    if language:
        metadata["language"] = language
    return Extracted(title, text, metadata)
