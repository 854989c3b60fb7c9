"""A PowerPoint deck's (.pptx) text as one document, with the standard library alone.

A .pptx file is a zip of XML parts (Office Open XML). `ppt/presentation.xml` lists the slides
in show order (`<p:sldId r:id>`), which `ppt/_rels/presentation.xml.rels` maps to slide parts
(their file names need not follow that order). A slide's words are `<a:t>` runs in `<a:p>`
paragraphs of its shapes and tables; speaker notes and hidden slides (`show="0"`) are not the
deck's text; slides the deck lists but lacks are named in a warning. The title is the core
properties' title, else the first slide's title
placeholder; the author is the core properties' creator. Parts are read through `zipped.py`,
which bounds what they inflate to.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from xml.etree import ElementTree

from tessera.data.markup import Extracted
from tessera.data.zipped import missing_parts, opened, xml_part
from tessera.errors import CorpusError

A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
P = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
DC = "{http://purl.org/dc/elements/1.1/}"
PRESENTATION, PRESENTATION_RELS, CORE = (
    "ppt/presentation.xml",
    "ppt/_rels/presentation.xml.rels",
    "docProps/core.xml",
)
TITLE_PLACEHOLDERS = ("title", "ctrTitle")


def _slide_names(presentation: ElementTree.Element, rels: ElementTree.Element | None) -> list[str]:
    """The slide parts in show order (a slide whose relationship is missing by its `r:id`)."""
    targets = {}
    for rel in () if rels is None else rels.iter(f"{RELS}Relationship"):
        target = rel.get("Target", "")
        name = (
            target.lstrip("/")
            if target.startswith("/")
            else posixpath.normpath(posixpath.join("ppt", target))
        )
        targets[rel.get("Id")] = name
    refs = [slide.get(f"{R}id", "") for slide in presentation.iter(f"{P}sldId")]
    return [targets.get(ref, f"relationship {ref}") for ref in refs]


def _paragraphs(shape: ElementTree.Element) -> list[str]:
    """A shape's paragraphs (table cells and grouped shapes included), runs joined, a line
    break within a paragraph read as a space."""
    lines = []
    for paragraph in shape.iter(f"{A}p"):
        runs = [(node.text or "") if node.tag == f"{A}t" else " " for node in paragraph.iter()
                if node.tag in (f"{A}t", f"{A}br")]  # fmt: skip
        text = " ".join("".join(runs).split())
        if text:
            lines.append(text)
    return lines


def _slide(slide: ElementTree.Element) -> tuple[str, list[str]]:
    """(the title placeholder's text, every paragraph of the slide in shape order)."""
    title, lines = "", []
    tree = slide.find(f"{P}cSld/{P}spTree")
    for shape in [] if tree is None else list(tree):
        placeholder = shape.find(f"{P}nvSpPr/{P}nvPr/{P}ph")
        text = _paragraphs(shape)
        if not title and placeholder is not None and placeholder.get("type") in TITLE_PLACEHOLDERS:
            title = " ".join(text)
        lines += text
    return title, lines


def pptx_to_text(path: Path) -> Extracted:
    """Text: each shown slide's paragraphs, a blank line between slides. Metadata: `slides`
    (shown slides with text), `author`."""
    with opened(path, "a PowerPoint deck") as archive:
        presentation = xml_part(archive, PRESENTATION, path)
        if presentation is None:
            raise CorpusError(f"cannot be read as a PowerPoint deck: no {PRESENTATION}", file=path)
        names = _slide_names(presentation, xml_part(archive, PRESENTATION_RELS, path))
        slides = [xml_part(archive, name, path) for name in names]
        core = xml_part(archive, CORE, path)
    missing = [name for name, slide in zip(names, slides, strict=True) if slide is None]
    if missing:
        missing_parts(path, "slides the deck lists but lacks", missing)
    title = author = ""
    if core is not None:
        title = " ".join((core.findtext(f"{DC}title") or "").split())
        author = " ".join((core.findtext(f"{DC}creator") or "").split())
    blocks = []
    for slide in slides:
        if slide is None or slide.get("show") == "0":
            continue
        heading, lines = _slide(slide)
        title = title or heading
        if lines:
            blocks.append("\n".join(lines))
    metadata: dict = {"slides": len(blocks)}
    if author:
        metadata["author"] = author
    return Extracted(title, "\n\n".join(blocks), metadata)
