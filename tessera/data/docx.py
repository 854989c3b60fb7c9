"""A Word document's (.docx) text as one document, with the standard library alone.

A .docx file is a zip of XML parts (Office Open XML): the body is `word/document.xml`, one
`<w:p>` a paragraph (table cells hold paragraphs too), its words in `<w:t>` runs, tabs and
breaks as `<w:tab/>` and `<w:br/>`; the title and author are in `docProps/core.xml`. Only those
two parts are read: headers, footers, comments and tracked deletions (`<w:delText>`) are not
the document's text. Parts are read through `zipped.py`, which bounds what they inflate to.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

from tessera.data.markup import Extracted
from tessera.data.zipped import opened, xml_part
from tessera.errors import CorpusError

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
DC = "{http://purl.org/dc/elements/1.1/}"
BODY, CORE = "word/document.xml", "docProps/core.xml"


def _words(element: ElementTree.Element, parts: list[str]) -> None:
    """A paragraph's own words; a text box's paragraphs are read on their own, after it."""
    for node in element:
        if node.tag == f"{W}txbxContent":
            continue
        if node.tag == f"{W}t" and node.text:
            parts.append(node.text)
        elif node.tag == f"{W}tab":
            parts.append("\t")
        elif node.tag in (f"{W}br", f"{W}cr"):
            parts.append("\n")
        _words(node, parts)


def _paragraph(element: ElementTree.Element) -> str:
    parts: list[str] = []
    _words(element, parts)
    return "".join(parts).strip()


def docx_to_text(path: Path) -> Extracted:
    """Title: the document's core title, else its first paragraph in the `Title` style (then not
    repeated in the text). Text: one line per non-empty paragraph. Metadata: `author`."""
    with opened(path, "a Word document") as archive:
        body = xml_part(archive, BODY, path)
        core = xml_part(archive, CORE, path)
    if body is None:
        raise CorpusError(f"cannot be read as a Word document: no {BODY}", file=path)
    title = author = ""
    if core is not None:
        title = " ".join((core.findtext(f"{DC}title") or "").split())
        author = " ".join((core.findtext(f"{DC}creator") or "").split())
    lines = []
    for paragraph in body.iter(f"{W}p"):  # a paragraph, then those of its text boxes
        text = _paragraph(paragraph)
        style = paragraph.find(f"{W}pPr/{W}pStyle")
        if text and not title and style is not None and style.get(f"{W}val") == "Title":
            title = text
            continue
        if text:
            lines.append(text)
    return Extracted(title, "\n".join(lines), {"author": author} if author else {})
