"""EPUB books as documents: chapters in reading order, title and author, DRM refused; real
Cranfield text in books written as e-book tools write them."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from tessera.data.files import read_file
from tessera.errors import CorpusError


def write_epub(
    path: Path,
    title: str,
    chapters: list[tuple[str, str]],
    encrypted: list[str] = (),
    part_title: str | None = None,
    spine_extra: str = "",
) -> Path:
    """An EPUB 3 book as e-book tools write it: the container, a package (OPF) in a subfolder,
    one XHTML part per chapter in the spine (its <title> `part_title`, else the book's, its
    heading an <h1>), a navigation part and a stylesheet outside it; `encrypted`: parts
    META-INF/encryption.xml lists; `spine_extra`: more of the package's manifest and spine."""
    parts = {f"OEBPS/Text/chapter {n}.xhtml": chapter for n, chapter in enumerate(chapters, start=1)}
    items = "".join(
        f'<item id="c{n}" href="Text/chapter%20{n}.xhtml" media-type="application/xhtml+xml"/>'
        for n in range(1, len(chapters) + 1)
    )
    spine = "".join(f'<itemref idref="c{n}"/>' for n in range(1, len(chapters) + 1))
    if spine_extra:
        items += '<item id="gone" href="Text/gone.xhtml" media-type="application/xhtml+xml"/>'
        spine += spine_extra
    package = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:title>{escape(title)}</dc:title><dc:creator>M. Brenckman</dc:creator></metadata>"
        f'<manifest><item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
        f'<item id="css" href="style.css" media-type="text/css"/>{items}</manifest>'
        f"<spine>{spine}</spine></package>"
    )
    container = (
        '<?xml version="1.0"?><container xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        'version="1.0"><rootfiles><rootfile full-path="OEBPS/content.opf" '
        'media-type="application/oebps-package+xml"/></rootfiles></container>'
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip")
        archive.writestr("META-INF/container.xml", container)
        archive.writestr("OEBPS/content.opf", package)
        archive.writestr("OEBPS/nav.xhtml", "<html><body><nav><ol><li>Contents</li></ol></nav></body></html>")
        archive.writestr("OEBPS/style.css", "h1 { font-size: 2em }")
        for name, (heading, text) in parts.items():
            archive.writestr(
                name,
                '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
                f"<head><title>{escape(part_title or title)}</title></head><body><h1>{escape(heading)}</h1>"
                f"<p>{escape(text)}</p></body></html>",
            )
        if encrypted:
            references = "".join(
                '<enc:EncryptedData xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:CipherData>'
                f'<enc:CipherReference URI="{name}"/></enc:CipherData></enc:EncryptedData>'
                for name in encrypted
            )
            ocf = "urn:oasis:names:tc:opendocument:xmlns:container"
            archive.writestr(
                "META-INF/encryption.xml", f'<encryption xmlns="{ocf}">{references}</encryption>'
            )
    return path


def test_epub_books_give_their_chapters_in_reading_order(tmp_path: Path, data_dir: Path) -> None:
    with (data_dir / "cranfield-beir" / "corpus.jsonl").open() as handle:
        docs = [json.loads(next(handle)) for _ in range(3)]
    chapters = [(" ".join(d["title"].split()).capitalize(), " ".join(d["text"].split())) for d in docs]
    path = write_epub(tmp_path / "book.epub", "Studies in aerodynamics", chapters, ["OEBPS/Fonts/serif.otf"])
    document = read_file(path, tmp_path)
    assert (document.id, document.title) == ("book", "Studies in aerodynamics")
    assert document.text == "\n\n".join(f"{heading}\n{text}" for heading, text in chapters)
    assert document.metadata["author"] == "M. Brenckman" and document.metadata["chapters"] == 3
    assert document.metadata["format"] == "epub"  # an obfuscated font is no obstacle

    locked = write_epub(tmp_path / "drm.epub", "Locked", chapters, ["OEBPS/Text/chapter 2.xhtml"])
    with pytest.raises(CorpusError, match=r"is encrypted \(DRM: 1 of 3 chapters\)") as info:
        read_file(locked, tmp_path)
    assert info.value.file == str(locked)
    broken = tmp_path / "broken.epub"
    broken.write_bytes(b"PK not a zip")
    with pytest.raises(CorpusError, match="cannot be read as an EPUB book"):
        read_file(broken, tmp_path)


def test_a_running_title_is_not_text_and_missing_parts_are_named(tmp_path: Path) -> None:
    """Each chapter's <title>, a form of the book's title, was added to its text, so a search for
    a word of it found the book; spine parts the book lacked were passed over without a word."""
    chapters = [("Lift", "the lift of a wing"), ("Drag", "the drag of a body")]
    path = write_epub(tmp_path / "b.epub", "Aero", chapters, part_title="Zanzibar Aero Notes")
    assert read_file(path, tmp_path).text == "Lift\nthe lift of a wing\n\nDrag\nthe drag of a body"
    spine = '<itemref idref="gone"/><itemref idref="c9"/>'
    path = write_epub(tmp_path / "gaps.epub", "Aero", chapters, spine_extra=spine)
    with pytest.warns(UserWarning) as said:
        document = read_file(path, tmp_path)
    assert [str(w.message) for w in said] == [
        f"{path}: spine items the package's manifest does not list: c9; read without them",
        f"{path}: chapters in the spine but not in the book: OEBPS/Text/gone.xhtml; read without them",
    ]
    assert document.metadata["chapters"] == 2
