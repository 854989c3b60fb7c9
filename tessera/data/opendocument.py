"""OpenDocument text (.odt) and presentations (.odp), LibreOffice's formats, as one document each.

An OpenDocument file is a zip of XML parts: the body is `content.xml` (`<office:text>` or
`<office:presentation>`), its paragraphs and headings `<text:p>` and `<text:h>` wherever they
sit (lists, table cells, text frames, slides), spaces written as `<text:s text:c="N"/>`, tabs
and line breaks as elements; the title and author are in `meta.xml`. Comments
(`<office:annotation>`), tracked deletions (`<text:tracked-changes>`), foot- and endnotes'
bodies and a slide's speaker notes are not the document's text. Parts are read through
`zipped.py`, which bounds what they inflate to.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

from tessera.data.markup import Extracted
from tessera.data.zipped import opened, xml_part
from tessera.errors import CorpusError

TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
PRESENTATION = "{urn:oasis:names:tc:opendocument:xmlns:presentation:1.0}"
META = "{urn:oasis:names:tc:opendocument:xmlns:meta:1.0}"
DC = "{http://purl.org/dc/elements/1.1/}"
CONTENT, META_PART = "content.xml", "meta.xml"
PARAGRAPHS = (f"{TEXT}p", f"{TEXT}h")
LEFT_OUT = (f"{OFFICE}annotation", f"{TEXT}tracked-changes", f"{TEXT}note-body", f"{PRESENTATION}notes")
KINDS = {"odt": "text document", "odp": "presentation"}


def _inline(element: ElementTree.Element, parts: list[str]) -> None:
    """A paragraph's own words: spans and links followed, paragraphs nested in frames not."""
    parts.append(element.text or "")
    for child in element:
        if child.tag == f"{TEXT}s":
            parts.append(" ")  # text:c="N" spaces: one is the same to every tokenizer (and N may be 10^14)
        elif child.tag == f"{TEXT}tab":
            parts.append("\t")
        elif child.tag == f"{TEXT}line-break":
            parts.append("\n")
        elif child.tag not in PARAGRAPHS and child.tag not in LEFT_OUT and child.tag != f"{TEXT}note":
            _inline(child, parts)
        parts.append(child.tail or "")


def _paragraphs(element: ElementTree.Element, lines: list[str]) -> None:
    """Every paragraph under `element`, in document order, each once."""
    for child in element:
        if child.tag in LEFT_OUT:
            continue
        if child.tag in PARAGRAPHS:
            parts: list[str] = []
            _inline(child, parts)
            text = "\n".join(" ".join(line.split()) for line in "".join(parts).split("\n")).strip()
            if text:
                lines.append(text)
        _paragraphs(child, lines)  # paragraphs of frames and notes' citations inside it


def opendocument_to_text(path: Path) -> Extracted:
    """Title and author: `meta.xml`'s `dc:title` and creator (else initial creator). Text: one
    line per non-empty paragraph or heading. Metadata: `author`."""
    kind = KINDS.get(path.suffix.lower().lstrip("."), "OpenDocument file")
    with opened(path, f"an OpenDocument {kind}") as archive:
        content = xml_part(archive, CONTENT, path)
        meta = xml_part(archive, META_PART, path)
    body = None if content is None else content.find(f"{OFFICE}body")
    if body is None:
        raise CorpusError(f"cannot be read as an OpenDocument {kind}: no {CONTENT} body", file=path)
    title = author = ""
    if meta is not None:
        info = meta.find(f"{OFFICE}meta")
        if info is not None:
            title = " ".join((info.findtext(f"{DC}title") or "").split())
            creator = info.findtext(f"{DC}creator") or info.findtext(f"{META}initial-creator") or ""
            author = " ".join(creator.split())
    lines: list[str] = []
    _paragraphs(body, lines)
    return Extracted(title, "\n".join(lines), {"author": author} if author else {})
