"""OpenDocument text and presentations as documents: paragraphs and headings wherever they sit,
spaces and breaks as written, comments, tracked deletions, notes and speaker notes left out."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from tessera.data.files import read_file
from tessera.errors import CorpusError

NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
    'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" '
    'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/"'
)


def write_odf(path: Path, body: str, title: str = "", creator: str = "M. Brenckman") -> Path:
    info = (f"<dc:title>{escape(title)}</dc:title>" if title else "") + (
        f"<meta:initial-creator>{escape(creator)}</meta:initial-creator>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        archive.writestr("content.xml", f'<?xml version="1.0"?><office:document-content {NS}>'
                         f"<office:body>{body}</office:body></office:document-content>")  # fmt: skip
        archive.writestr(
            "meta.xml", f"<office:document-meta {NS}><office:meta>{info}</office:meta></office:document-meta>"
        )
    return path


def spaced(text: str) -> str:
    """A paragraph as LibreOffice writes it: a span, a run of spaces as <text:s/>, a comment."""
    first, _, rest = text.partition(" ")
    return (
        f'<text:p><text:span>{escape(first)}</text:span><text:s text:c="1"/>{escape(rest)}'
        "<office:annotation><text:p>a reviewer's comment</text:p></office:annotation></text:p>"
    )


def test_text_documents_and_presentations(tmp_path: Path, data_dir: Path) -> None:
    with (data_dir / "cranfield-beir" / "corpus.jsonl").open() as handle:
        docs = [json.loads(next(handle)) for _ in range(3)]
    heading = " ".join(docs[0]["title"].split())
    texts = [" ".join(d["text"].split()) for d in docs]
    body = (
        "<office:text><text:tracked-changes><text:changed-region><text:deletion><text:p>struck out</text:p>"
        "</text:deletion></text:changed-region></text:tracked-changes>"
        f'<text:h text:outline-level="1">{escape(heading)}</text:h>{spaced(texts[0])}'
        f"<text:list><text:list-item>{spaced(texts[1])}</text:list-item></text:list>"
        "<table:table><table:table-row><table:table-cell><text:p>Mach 2.5</text:p></table:table-cell>"
        "</table:table-row></table:table>"
        "<text:p>see note<text:note><text:note-citation>1</text:note-citation><text:note-body>"
        "<text:p>a footnote</text:p></text:note-body></text:note></text:p></office:text>"
    )
    document = read_file(write_odf(tmp_path / "paper.odt", body, title="Slipstream studies"), tmp_path)
    assert (document.id, document.title) == ("paper", "Slipstream studies")
    assert document.text == "\n".join([heading, texts[0], texts[1], "Mach 2.5", "see note"])
    assert document.metadata == {**document.metadata, "author": "M. Brenckman", "format": "odt"}

    slides = (
        "<office:presentation><draw:page><draw:frame><draw:text-box><text:p>"
        f"{escape(texts[2])}</text:p></draw:text-box></draw:frame><presentation:notes><draw:frame>"
        "<draw:text-box><text:p>say this aloud</text:p></draw:text-box></draw:frame></presentation:notes>"
        "</draw:page></office:presentation>"
    )
    deck = read_file(write_odf(tmp_path / "talk.odp", slides), tmp_path)
    assert (deck.title, deck.text, deck.metadata["format"]) == ("", texts[2], "odp")

    broken = tmp_path / "broken.odt"
    broken.write_bytes(b"PK not a zip")
    with pytest.raises(CorpusError, match="cannot be read as an OpenDocument text document") as info:
        read_file(broken, tmp_path)
    assert info.value.file == str(broken)
