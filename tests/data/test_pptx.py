"""PowerPoint decks as documents: shown slides in show order, tables and grouped shapes read,
notes and hidden slides not; real Cranfield text in decks written as PowerPoint writes them."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from tessera.data.files import read_file
from tessera.errors import CorpusError

NS = (
    'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
    'xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
)


def runs(text: str) -> str:
    """A paragraph as PowerPoint splits it: two runs, a line break between them."""
    first, _, rest = text.partition(" ")
    return f"<a:p><a:r><a:t>{escape(first)}</a:t></a:r><a:br/><a:r><a:t>{escape(rest)}</a:t></a:r></a:p>"


def shape(paragraphs: list[str], placeholder: str = "") -> str:
    ph = f'<p:nvPr><p:ph type="{placeholder}"/></p:nvPr>' if placeholder else "<p:nvPr/>"
    body = "".join(runs(text) for text in paragraphs)
    return f"<p:sp><p:nvSpPr>{ph}</p:nvSpPr><p:txBody>{body}</p:txBody></p:sp>"


def slide(title: str, text: str, extra: str = "", hidden: bool = False) -> str:
    show = ' show="0"' if hidden else ""
    shapes = shape([title], "title") + shape([text]) + extra
    return f'<?xml version="1.0"?><p:sld {NS}{show}><p:cSld><p:spTree>{shapes}</p:spTree></p:cSld></p:sld>'


def write_pptx(path: Path, slides: dict[str, str], order: list[str], author: str = "M. Brenckman") -> Path:
    """A deck whose show order (`order`, slide part names) differs from its parts' names."""
    ids = "".join(f'<p:sldId id="{256 + n}" r:id="rId{n}"/>' for n in range(len(order)))
    rels = "".join(
        f'<Relationship Id="rId{n}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        f'relationships/slide" Target="slides/{name}"/>'
        for n, name in enumerate(order)
    )
    core = (
        '<?xml version="1.0"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
        'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:creator>{escape(author)}</dc:creator></cp:coreProperties>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        archive.writestr(
            "ppt/presentation.xml", f"<p:presentation {NS}><p:sldIdLst>{ids}</p:sldIdLst></p:presentation>"
        )
        archive.writestr(
            "ppt/_rels/presentation.xml.rels",
            f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}</Relationships>',
        )
        for name, xml in slides.items():
            archive.writestr(f"ppt/slides/{name}", xml)
        archive.writestr("ppt/notesSlides/notesSlide1.xml", slide("Speaker notes", "say this aloud"))
        archive.writestr("docProps/core.xml", core)
    return path


def test_decks_give_shown_slides_in_show_order(tmp_path: Path, data_dir: Path) -> None:
    with (data_dir / "cranfield-beir" / "corpus.jsonl").open() as handle:
        docs = [json.loads(next(handle)) for _ in range(3)]
    titles = [" ".join(d["title"].split()) for d in docs]
    texts = [" ".join(d["text"].split()[:40]) for d in docs]
    table = (
        "<p:graphicFrame><a:graphic><a:graphicData><a:tbl><a:tr>"
        "<a:tc><a:txBody><a:p><a:r><a:t>Mach</a:t></a:r></a:p></a:txBody></a:tc>"
        "<a:tc><a:txBody><a:p><a:r><a:t>2.5</a:t></a:r></a:p></a:txBody></a:tc>"
        "</a:tr></a:tbl></a:graphicData></a:graphic></p:graphicFrame>"
    )
    group = f"<p:grpSp>{shape(['grouped caption'])}</p:grpSp>"
    slides = {
        "slide1.xml": slide(titles[1], texts[1], table),
        "slide2.xml": slide(titles[0], texts[0], group),
        "slide3.xml": slide(titles[2], texts[2], hidden=True),
    }
    path = write_pptx(tmp_path / "talk.pptx", slides, ["slide2.xml", "slide1.xml", "slide3.xml"])
    document = read_file(path, tmp_path)
    assert (document.id, document.title) == ("talk", titles[0])  # no core title: the first slide's
    first, second = document.text.split("\n\n")
    assert first == f"{titles[0]}\n{texts[0]}\ngrouped caption"
    assert second == f"{titles[1]}\n{texts[1]}\nMach\n2.5"
    assert "say this aloud" not in document.text and texts[2] not in document.text
    assert document.metadata == {**document.metadata, "slides": 2, "author": "M. Brenckman", "format": "pptx"}

    broken = tmp_path / "broken.pptx"
    broken.write_bytes(b"PK not a zip")
    with pytest.raises(CorpusError, match="cannot be read as a PowerPoint deck") as info:
        read_file(broken, tmp_path)
    assert info.value.file == str(broken)


def test_slides_the_deck_lists_but_lacks_are_named(tmp_path: Path) -> None:
    """A slide part missing, or a show-order entry with no relationship, was passed over silently."""
    slides = {"slide1.xml": slide("Lift", "the lift of a wing")}
    path = write_pptx(tmp_path / "gaps.pptx", slides, ["slide1.xml", "slide7.xml"])
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    listed = parts["ppt/presentation.xml"].replace(
        b"</p:sldIdLst>", b'<p:sldId id="300" r:id="rId9"/></p:sldIdLst>'
    )
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in {**parts, "ppt/presentation.xml": listed}.items():
            archive.writestr(name, data)
    with pytest.warns(UserWarning) as said:
        document = read_file(path, tmp_path)
    assert [str(w.message) for w in said] == [
        f"{path}: slides the deck lists but lacks: ppt/slides/slide7.xml, relationship rId9; "
        "read without them"
    ]
    assert document.text == "Lift\nthe lift of a wing" and document.metadata["slides"] == 1
