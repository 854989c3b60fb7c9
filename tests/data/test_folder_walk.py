"""What a folder of documents holds besides documents: linked folders (and loops), an index
built inside it, Office's owner files, empty files, names that are not UTF-8; and files that
are damaged in ways their parsers raise anything for."""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path

import pytest

from tessera.data.export import export_corpus
from tessera.data.files import folder_files, read_file, read_folder
from tessera.errors import CorpusError, TesseraWarning
from tessera.indexing.builder import build_index
from tests.data.test_files import write, write_docx, write_pdf

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"


def relative(files: list[Path], root: Path) -> list[str]:
    return [path.relative_to(root).as_posix() for path in files]


def test_linked_folders_are_followed_once_and_a_loop_ends(tmp_path: Path) -> None:
    write(tmp_path / "shared" / "a.txt", "lynx")
    root = tmp_path / "notes"
    write(root / "own.txt", "ocelot")
    (root / "linked").symlink_to(tmp_path / "shared")
    (root / "loop").symlink_to(tmp_path)  # holds notes/ again and shared/ a second time
    with warnings.catch_warnings():
        warnings.simplefilter("error", TesseraWarning)
        files = folder_files(root)
    assert relative(files, root) == ["linked/a.txt", "own.txt"]  # each real folder once, the first path wins


def test_a_folder_is_read_at_its_own_path_not_at_a_links_to_it(tmp_path: Path) -> None:
    """A link sorting before the folder it names took its ids ('aaa/r', 'sub/r' once the link
    went), so adding or removing a link made a sync delete and add the folder's documents."""
    write(tmp_path / "sub" / "deeper" / "r.txt", "lynx")
    write(tmp_path / "z.txt", "ocelot")
    (tmp_path / "aaa").symlink_to(tmp_path / "sub")
    (tmp_path / "sub" / "deeper" / "up").symlink_to(tmp_path)  # a loop through the folder's own path
    assert relative(folder_files(tmp_path), tmp_path) == ["sub/deeper/r.txt", "z.txt"]


def test_entries_that_are_not_files_are_named(tmp_path: Path) -> None:
    """A link to nothing and a pipe named like a text file were left out without a word."""
    write(tmp_path / "a.txt", "lynx")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    os.mkfifo(tmp_path / "pipe.txt")
    with pytest.warns(TesseraWarning, match=r"2 entries are not files to read .*: gone.txt, pipe.txt"):
        assert relative(folder_files(tmp_path), tmp_path) == ["a.txt"]


def test_an_index_inside_the_folder_and_office_owner_files_are_not_documents(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "lynx note")
    write(tmp_path / "~$report.docx", bytes(162))  # what Word leaves beside an open document
    build_index(tmp_path, tmp_path / "myindex", encoder="bm25", show_progress=False)
    (tmp_path / "myindex.lock").touch()  # an update's lock beside it
    with warnings.catch_warnings():
        warnings.simplefilter("error", TesseraWarning)
        assert relative(folder_files(tmp_path), tmp_path) == ["a.txt"]


def test_empty_files_and_names_not_utf8_are_left_out_with_a_warning(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "lynx")
    write(tmp_path / "empty.docx", b"")
    write(tmp_path / "blank.pdf", b"")
    (tmp_path / os.fsdecode(b"caf\xe9.txt")).write_text("storks")
    with pytest.warns(
        TesseraWarning, match=r"1 files were left out because their names are not UTF-8.*caf\\udce9"
    ):
        files = folder_files(tmp_path)
    with pytest.warns(TesseraWarning, match=r"2 files have no text.*: blank\.pdf, empty\.docx"):
        assert [d.id for d in read_folder(tmp_path, files)] == ["a"]


def test_a_word_text_box_is_read_once_and_its_paragraph_kept(tmp_path: Path) -> None:
    box = "<w:txbxContent><w:p><w:r><w:t>Box about puffins.</w:t></w:r></w:p></w:txbxContent>"
    body = (
        f'<w:document xmlns:w="{W}" xmlns:mc="{MC}"><w:body><w:p><w:r><w:t>Before about gannets.</w:t></w:r>'
        f'<w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing>{box}</w:drawing></mc:Choice>'
        f"<mc:Fallback><w:pict>{box}</w:pict></mc:Fallback></mc:AlternateContent></w:r>"
        '<w:r><w:t xml:space="preserve"> After about boobies.</w:t></w:r></w:p></w:body></w:document>'
    )
    path = tmp_path / "box.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("word/document.xml", body)
    assert read_file(path, tmp_path).text == "Before about gannets. After about boobies.\nBox about puffins."


def with_central_field(source: Path, path: Path, offset: int, value: bytes) -> Path:
    """A copy of a zip whose central directory entry for the body holds `value` at `offset`
    (8: the flags, 10: the compression method), which is what zipfile reads."""
    raw = bytearray(source.read_bytes())
    at = raw.find(b"PK\x01\x02")
    while raw[at + 46 : at + 46 + 17] != b"word/document.xml":
        at = raw.find(b"PK\x01\x02", at + 4)
    raw[at + offset : at + offset + len(value)] = value
    path.write_bytes(bytes(raw))
    return path


def test_damaged_office_files_are_errors_naming_them(tmp_path: Path) -> None:
    source = write_docx(tmp_path / "source.docx", ["wing flutter at high speed"])
    cases = {
        "RuntimeError": with_central_field(source, tmp_path / "encrypted.docx", 8, b"\x01\x00"),
        "NotImplementedError": with_central_field(source, tmp_path / "aes.docx", 10, b"\x63\x00"),
    }
    for shown, path in cases.items():
        with pytest.raises(CorpusError, match=rf"cannot be read as a Word document \({shown}") as info:
            read_file(path, tmp_path)
        assert info.value.file == str(path)


def test_a_pdf_pypdf_fails_on_oddly_is_an_error_naming_it(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "x.pdf", ["wing flutter"])
    path.write_bytes(path.read_bytes().replace(b"trailer\n<<", b"trailer\n+<"))  # pypdf: AttributeError
    with pytest.raises(CorpusError, match=r"cannot be read as PDF \(\w+Error") as info:
        read_file(path, tmp_path)
    assert info.value.file == str(path)


def test_html_declared_as_utf16_or_a_non_text_codec_is_read_as_utf8(tmp_path: Path) -> None:
    for charset in ("utf-16", "hex"):
        page = write(tmp_path / f"{charset}.html", f'<meta charset="{charset}"><p>caf\u00e9 wings</p>')
        assert read_file(page, tmp_path).text == "caf\u00e9 wings"


def test_extract_refuses_an_id_index_would_refuse(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    write(folder / "tab\there.txt", "lynx")
    with pytest.raises(CorpusError, match="tab") as info:
        export_corpus(folder, tmp_path / "out.jsonl", show_progress=False)
    assert info.value.file == str(folder / "tab\there.txt") and not (tmp_path / "out.jsonl").exists()
