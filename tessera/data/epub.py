"""An e-book's (.epub) text as one document, with the standard library alone.

An EPUB (2 or 3) is a zip: `META-INF/container.xml` names the package file (OPF), whose
`<metadata>` holds the title and author (Dublin Core), whose `<manifest>` lists the parts and
whose `<spine>` gives the reading order. The book's text is its spine's XHTML parts in that
order, each through the HTML reader (data/markup.py): markup, scripts and styles removed, one
line per block. A chapter's heading stays in the text (the HTML reader would take it as the
part's title), a part's `<title>` that only repeats the book's, or that several parts share (a
running title), does not. Spine parts the book lacks are named in a warning. A book whose spine
parts are encrypted (`META-INF/encryption.xml`: DRM) is refused, naming the file; obfuscated
fonts, which that file also lists, are not text and do not matter. Parts are read through
`zipped.py`, which bounds what they inflate to.
"""

from __future__ import annotations

import posixpath
import zipfile
from collections import Counter
from pathlib import Path
from urllib.parse import unquote
from xml.etree import ElementTree

from tessera.data.markup import Extracted, decode_html, html_to_text
from tessera.data.zipped import missing_parts, opened, read_part, xml_part
from tessera.errors import CorpusError

CONTAINER, ENCRYPTION = "META-INF/container.xml", "META-INF/encryption.xml"
OCF = "{urn:oasis:names:tc:opendocument:xmlns:container}"
OPF = "{http://www.idpf.org/2007/opf}"
DC = "{http://purl.org/dc/elements/1.1/}"
XENC = "{http://www.w3.org/2001/04/xmlenc#}"
TEXT_TYPES = ("application/xhtml+xml", "text/html")


def _package_name(container: ElementTree.Element | None, path: Path) -> str:
    rootfile = None if container is None else container.find(f"{OCF}rootfiles/{OCF}rootfile")
    if rootfile is None or not rootfile.get("full-path"):
        raise CorpusError(f"cannot be read as an EPUB book: {CONTAINER} names no package file", file=path)
    return rootfile.get("full-path", "")


def _spine(package: ElementTree.Element, base: str, path: Path) -> list[str]:
    """The archive names of the spine's text parts, in reading order; an idref the manifest does
    not list is named in a warning."""
    listed = {item.get("id"): item for item in package.iterfind(f"{OPF}manifest/{OPF}item")}
    items = {
        key: item for key, item in listed.items() if item.get("media-type") in TEXT_TYPES and item.get("href")
    }
    unknown = [
        ref.get("idref", "")
        for ref in package.iterfind(f"{OPF}spine/{OPF}itemref")
        if ref.get("idref") not in listed
    ]
    if unknown:
        missing_parts(path, "spine items the package's manifest does not list", unknown)
    names = []
    for ref in package.iterfind(f"{OPF}spine/{OPF}itemref"):
        item = items.get(ref.get("idref"))
        if item is not None:
            href = unquote(item.get("href", "").split("#")[0])
            names.append(posixpath.normpath(posixpath.join(base, href)))
    return names


def _encrypted(archive: zipfile.ZipFile, path: Path) -> set[str]:
    """Names of the parts `META-INF/encryption.xml` lists (DRM; also obfuscated fonts)."""
    encryption = xml_part(archive, ENCRYPTION, path)
    if encryption is None:
        return set()
    return {
        unquote(reference.get("URI", ""))
        for reference in encryption.iter(f"{XENC}CipherReference")
        if reference.get("URI")
    }


def _text(value: str | None) -> str:
    return " ".join((value or "").split())


def epub_to_text(path: Path) -> Extracted:
    """Title and author: the package's Dublin Core `title` and first `creator`. Text: the spine's
    parts in order, a blank line between them. Metadata: `author`, `chapters` (spine parts with
    text)."""
    with opened(path, "an EPUB book") as archive:
        name = _package_name(xml_part(archive, CONTAINER, path), path)
        package = xml_part(archive, name, path)
        if package is None:
            raise CorpusError(f"cannot be read as an EPUB book: no package file {name}", file=path)
        spine = _spine(package, posixpath.dirname(name), path)
        locked = _encrypted(archive, path).intersection(spine)
        if locked:
            raise CorpusError(
                f"is encrypted (DRM: {len(locked)} of {len(spine)} chapters); Tessera reads only "
                "books without DRM",
                file=path,
            )
        parts = [(part, read_part(archive, part, path)) for part in spine]
    title = _text(package.findtext(f"{OPF}metadata/{DC}title"))
    author = _text(package.findtext(f"{OPF}metadata/{DC}creator"))
    missing = [part for part, raw in parts if raw is None]
    if missing:
        missing_parts(path, "chapters in the spine but not in the book", missing)
    read = [html_to_text(decode_html(raw, path / part)) for part, raw in parts if raw is not None]
    running = Counter(extracted.title for extracted in read)
    chapters = []
    for extracted in read:
        body, heading = extracted.text, extracted.title
        named = heading and heading != title and running[heading] == 1
        if named and heading not in body.splitlines():
            body = f"{heading}\n{body}" if body else heading
        if body.strip():
            chapters.append(body)
    metadata: dict = {"chapters": len(chapters)}
    if author:
        metadata["author"] = author
    return Extracted(title, "\n\n".join(chapters), metadata)
