"""A folder of text, Markdown, HTML and PDF files as a corpus, read from real Cranfield documents."""

from __future__ import annotations

import json
import os
import textwrap
import time
import warnings
from pathlib import Path

import pytest

from tessera.data.corpus import open_corpus
from tessera.data.files import SETTLED_NS, file_stamp, folder_files, ignored, read_file, read_folder
from tessera.data.markup import html_to_text, markdown_to_text
from tessera.data.pdf import dehyphenate, page_of, pdf_to_text
from tessera.data.sentences import split_sentences
from tessera.errors import CorpusError, TesseraWarning
from tessera.indexing.builder import build_index
from tessera.retrieval.index import Index
from tests.conftest import run_cli


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def write_pdf(path: Path, pages: list[str], title: str | None = None) -> Path:
    """A real PDF through matplotlib's PDF backend (standard fonts, so the text layer is plain)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    with (
        matplotlib.rc_context({"pdf.use14corefonts": True}),
        PdfPages(path, metadata={"Title": title}) as pdf,
    ):
        for text in pages:
            figure = plt.figure(figsize=(8.27, 11.69))
            figure.text(0.05, 0.95, text, va="top", fontsize=9, family="Helvetica", fontweight="medium")
            pdf.savefig(figure)
            plt.close(figure)
    return path


def wrapped(text: str) -> str:
    return "\n".join(textwrap.wrap(" ".join(text.split()), 90, break_on_hyphens=False))


def cranfield(data_dir: Path, count: int) -> list[dict]:
    with (data_dir / "cranfield-beir" / "corpus.jsonl").open() as handle:
        return [json.loads(next(handle)) for _ in range(count)]


def test_markdown_title_text_and_front_matter(tmp_path: Path) -> None:
    source = (
        "---\ntitle: Boundary layers\ntags: [aero, heat]\ndate: 2024-05-01\nnested: {a: 1}\n---\n"
        "# Shear flow\n\nA *flat* plate and a [link](http://example.org/x) with `u = 0`.\n\n"
        "- first item\n- second item\n\n| mach | lift |\n|---|---|\n| 2.0 | 0.31 |\n\n"
        "```\nrun(flow)\n```\n\n![a schlieren photograph](fig1.png)\n"
    )
    extracted = markdown_to_text(source, tmp_path / "n.md")
    assert extracted.title == "Boundary layers"  # the front matter's title wins over the heading
    assert extracted.text.splitlines() == [
        "Shear flow",
        "A flat plate and a link with u = 0.",
        "first item",
        "second item",
        "mach | lift",
        "2.0 | 0.31",
        "run(flow)",
        "a schlieren photograph",
    ]
    assert extracted.metadata == {"tags": ["aero", "heat"], "date": "2024-05-01"}  # nested: not filterable
    windows = markdown_to_text(source.replace("\n", "\r\n"), tmp_path / "w.md")  # front matter was text
    assert (windows.title, windows.metadata) == (extracted.title, extracted.metadata)
    assert windows.text.splitlines() == extracted.text.splitlines()
    plain = markdown_to_text("# Shear flow\n\nbody text\n\n# Second\n", tmp_path / "p.md")
    assert (plain.title, plain.text) == ("Shear flow", "body text\nSecond")  # the first H1, not repeated


def test_a_first_block_that_is_not_a_yaml_mapping_is_text_not_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "n.md"
    with pytest.warns(
        TesseraWarning, match=rf"{path}:4: the block between the first two '---' lines is not YAML"
    ):
        broken = markdown_to_text("---\ntitle: ok\ntags: [unclosed\n---\nbody\n", path)
    assert broken.text.startswith("title: ok tags: [unclosed") and broken.text.endswith("body")
    slides = markdown_to_text("---\n\nIntro about flamingos.\n\n---\n\nSecond about ibises.\n", path)
    assert slides.text == "Intro about flamingos.\nSecond about ibises."  # a rule opening the text
    listed = markdown_to_text("---\ntitle: [Wings, Flaps]\n---\nbody\n", path)
    assert (listed.title, listed.text) == ("Wings, Flaps", "body")


def test_html_title_entities_scripts_menus_and_declared_charset(tmp_path: Path) -> None:
    page = (
        '<!doctype html><html><head><meta charset="iso-8859-1"><title>Caf\u00e9 aerodynamics</title>'
        "<style>p {color: red}</style><script>var lift = 1;</script></head><body>"
        '<nav><a href="/">Home</a> <a href="/about">About</a></nav><h1>Wing theory</h1>'
        "<p>Lift &amp; drag<br>at Mach 2</p><div>swept <b>wings</b></div>"
        "<table><tr><td>0.31</td><td>2.0</td></tr></table></body></html>"
    )
    document = read_file(write(tmp_path / "w.html", page.encode("latin-1")), tmp_path)
    assert document.title == "Caf\u00e9 aerodynamics"
    assert document.text.splitlines() == [
        "Wing theory",
        "Lift & drag",
        "at Mach 2",
        "swept wings",
        "0.31",
        "2.0",
    ]
    untitled = html_to_text("<html><body><h1>Only a heading</h1><p>body</p></body></html>")
    assert (untitled.title, untitled.text) == ("Only a heading", "body")
    bad = write(tmp_path / "bad.html", b"<p>fine</p>\n<p>caf\xe9</p>")  # no charset declared: UTF-8
    with pytest.raises(CorpusError, match="not valid UTF-8") as info:
        read_file(bad, tmp_path)
    assert info.value.line == 2
    bogus = write(tmp_path / "bogus.html", b'<meta charset="bogus-xyz"><p>caf\xe9</p>')
    with pytest.raises(CorpusError, match=r"at byte \d+ \(its declared charset 'bogus-xyz' is unknown"):
        read_file(bogus, tmp_path)  # it said "not valid UTF-8" without a word of the charset
    xhtml = write(
        tmp_path / "x.htm", b'<?xml version="1.0" encoding="iso-8859-1"?><html><p>caf\xe9</p></html>'
    )
    assert read_file(xhtml, tmp_path).text == "caf\u00e9"  # the XML declaration's encoding was not read


def test_pdf_pages_title_and_words_broken_at_line_ends(tmp_path: Path, data_dir: Path) -> None:
    doc = cranfield(data_dir, 1)[0]
    words = doc["text"].split()
    half = len(words) // 2
    pdf = write_pdf(
        tmp_path / "p.pdf", [wrapped(" ".join(words[:half])), wrapped(" ".join(words[half:]))], "Wing"
    )
    extracted = pdf_to_text(pdf)
    assert extracted.title == "Wing" and extracted.metadata == {"pages": 2}
    assert extracted.text.split() == words
    assert extracted.text.count("\f") == 1  # pages apart, so no sentence runs across them
    second = extracted.text.index(words[half])
    assert (page_of(extracted.text, 0), page_of(extracted.text, second)) == (1, 2)
    assert any(sentence.split()[-1] == words[half - 1] for sentence in split_sentences(extracted.text))
    assert page_of("one page only", 5) is None
    assert dehyphenate("the retrie-\nval of bound-\nary layers; Mach-\n2 and X-\nrays") == (
        "the retrieval of boundary layers; Mach-\n2 and X-\nrays"
    )
    converted = write_pdf(tmp_path / "c.pdf", ["text"], "Microsoft Word - draft3.docx")
    assert pdf_to_text(converted).title == ""  # a converter's file name is not a title
    shifted = tmp_path / "shifted.pdf"  # pypdf repairs it, and printed that on its own, naming no file
    shifted.write_bytes(pdf.read_bytes().replace(b"%PDF", b"\n\n%PDF", 1))
    with pytest.warns(TesseraWarning, match=rf"^{shifted}: pypdf: invalid pdf header.*\(and 2 more of its"):
        assert pdf_to_text(shifted).text.split() == words


def write_docx(path: Path, paragraphs: list[str], title: str = "", styled_title: str = "") -> Path:
    """A minimal Word document: the parts a .docx needs ([Content_Types].xml, the body, core
    properties), as Word writes them."""
    import zipfile
    from xml.sax.saxutils import escape

    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    runs = [
        f'<w:p><w:pPr><w:pStyle w:val="Title"/></w:pPr><w:r><w:t>{escape(styled_title)}</w:t></w:r></w:p>'
    ]
    runs = runs if styled_title else []
    for text in paragraphs:
        first, _, rest = text.partition(" ")  # two runs, as Word splits them
        second = f'<w:r><w:t xml:space="preserve"> {escape(rest)}</w:t></w:r>'
        runs.append(f"<w:p><w:r><w:t>{escape(first)}</w:t></w:r>{second}</w:p>")
    runs.append("<w:p><w:r><w:delText>deleted words</w:delText></w:r></w:p>")  # a tracked deletion
    body = f'<?xml version="1.0"?><w:document xmlns:w="{w}"><w:body>{"".join(runs)}</w:body></w:document>'
    core = (
        '<?xml version="1.0"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
        'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:title>{escape(title)}</dc:title><dc:creator>M. Brenckman</dc:creator></cp:coreProperties>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        archive.writestr("word/document.xml", body)
        archive.writestr("docProps/core.xml", core)
    return path


def test_word_documents_give_paragraphs_title_and_author(tmp_path: Path, data_dir: Path) -> None:
    docs = cranfield(data_dir, 3)
    paragraphs = [" ".join(d["text"].split()) for d in docs]
    path = write_docx(tmp_path / "w.docx", paragraphs, title="Slipstream studies")
    document = read_file(path, tmp_path)
    assert (document.id, document.title, document.text) == ("w", "Slipstream studies", "\n".join(paragraphs))
    assert document.metadata["author"] == "M. Brenckman" and document.metadata["format"] == "docx"
    styled = read_file(write_docx(tmp_path / "s.docx", paragraphs[:1], styled_title="Wing theory"), tmp_path)
    assert (styled.title, styled.text) == ("Wing theory", paragraphs[0])  # the Title paragraph, not repeated
    broken = write(tmp_path / "broken.docx", b"PK not a zip")
    with pytest.raises(CorpusError, match="cannot be read as a Word document") as info:
        read_file(broken, tmp_path)
    assert info.value.file == str(broken)


def test_unreadable_and_password_protected_pdfs_are_errors_naming_the_file(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    broken = write(tmp_path / "broken.pdf", b"%PDF-1.4\nnot really a pdf\n")
    with pytest.raises(CorpusError, match="cannot be read as PDF") as info:
        pdf_to_text(broken)
    assert info.value.file == str(broken)
    writer = PdfWriter(clone_from=PdfReader(write_pdf(tmp_path / "plain.pdf", ["secret wing data"])))
    writer.encrypt("pw", algorithm="RC4-128")
    with (tmp_path / "locked.pdf").open("wb") as handle:
        writer.write(handle)
    with pytest.raises(CorpusError, match="password-protected") as info:
        pdf_to_text(tmp_path / "locked.pdf")
    assert info.value.file == str(tmp_path / "locked.pdf")


def test_folder_ids_metadata_hidden_files_and_warnings(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", b"\xef\xbb\xbfalpha\n")  # a byte-order mark is not text
    write(tmp_path / "sub" / "b.md", "# Beta\n\nbeta body\n")
    write(tmp_path / ".git" / "config.txt", "not a document")
    write(tmp_path / "photo.png", b"\x89PNG")
    write_pdf(tmp_path / "scan.pdf", [""])  # a page without a text layer
    with pytest.warns(TesseraWarning, match=r"1 files of kinds Tessera does not read.*\.png 1\): photo\.png"):
        files = folder_files(tmp_path)
    assert [path.name for path in files] == ["a.txt", "scan.pdf", "b.md"]
    with pytest.warns(TesseraWarning, match=r"1 files have no text.*: scan\.pdf"):
        documents = list(read_folder(tmp_path, files))
    assert [(d.id, d.title, d.text) for d in documents] == [
        ("a", "", "alpha"),
        ("sub/b", "Beta", "beta body"),
    ]
    metadata = documents[1].metadata
    assert (metadata["path"], metadata["format"]) == ("sub/b.md", "markdown")
    assert metadata["modified"][:4].isdigit() and metadata["modified"].endswith("+00:00")
    write(tmp_path / "sub" / "b.html", "<p>also beta</p>")
    write(tmp_path / "a.md", "# also alpha")  # a second pair, named in the same error
    with (
        pytest.raises(
            CorpusError,
            match=r"'a.md' and 'a.txt' would both be document 'a': rename one \(clashing too: sub/b.md\)",
        ),
        pytest.warns(TesseraWarning),
    ):
        folder_files(tmp_path)
    (tmp_path / "a.md").unlink()
    bad = write(tmp_path / "bad" / "c.txt", b"line one\nbad \xff byte")
    with pytest.raises(CorpusError, match="not valid UTF-8") as info:
        list(read_folder(tmp_path / "bad"))
    assert (info.value.file, info.value.line) == (str(bad), 2)


def test_tesseraignore_leaves_files_out_quietly(tmp_path: Path) -> None:
    for name in ("a.md", "notes/b.md", "notes/b.log.txt", "drafts/c.md", "deep/drafts/d.md", "keep/e.txt"):
        write(tmp_path / name, f"text of {name}")
    write(tmp_path / ".tesseraignore", "# not for the index\n*.log.txt\ndrafts/\nkeep/*.txt\n\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", TesseraWarning)  # ignored files are not warned about
        files = folder_files(tmp_path)
    assert [path.relative_to(tmp_path).as_posix() for path in files] == ["a.md", "notes/b.md"]
    assert ignored("x/drafts/y.md", ["drafts/"]) and not ignored("drafts.md", ["drafts/"])
    assert ignored("notes/b.md", ["notes/*.md"]) and not ignored("other/notes/b.md", ["notes/*.md"])
    assert not ignored("notes/sub/b.md", ["notes/*.md"])  # as in gitignore, * stays within a folder
    assert ignored("notes/sub/b.md", ["notes/**/*.md"]) and ignored("notes/b.md", ["notes/**/*.md"])
    assert ignored("notes/sub/b.md", ["notes/sub"]) and not ignored("notes/subway.md", ["notes/sub"])
    # the last matching pattern decides; `!` took nothing back and `\#` matched nothing before
    assert not ignored("imp.log", ["*.log", "!imp.log"]) and ignored("other.log", ["*.log", "!imp.log"])
    assert ignored("imp.log", ["*.log", "!imp.log", "imp*"])
    assert ignored("#hash.txt", ["\\#hash.txt"]) and ignored("!bang.txt", ["\\!bang.txt"])


def test_open_corpus_reads_a_folder_or_one_file(tmp_path: Path) -> None:
    write(tmp_path / "x.txt", "hello")
    corpus = open_corpus(tmp_path)
    assert (corpus.kind, corpus.size_hint, [d.id for d in corpus]) == ("files", 1, ["x"])
    single = open_corpus(write_pdf(tmp_path / "report.pdf", ["one long report"]))
    assert (single.kind, [(d.id, d.text) for d in single]) == ("files", [("report", "one long report")])
    empty = tmp_path / "empty"
    write(empty / "photo.png", b"\x89PNG")
    with warnings.catch_warnings(), pytest.raises(CorpusError, match="neither corpus.jsonl nor files"):
        warnings.simplefilter("ignore", TesseraWarning)
        open_corpus(empty)


def mixed_folder(documents: list[dict], root: Path) -> Path:
    """Cranfield documents, each in one of the five formats in turn, titles in each format's markup."""
    for number, doc in enumerate(documents):
        title, text = " ".join(doc["title"].split()), doc["text"]
        kind = number % 5
        if kind == 0:
            write(root / "md" / f"{doc['_id']}.md", f"# {title}\n\n{text}\n")
        elif kind == 1:
            write(
                root / "html" / f"{doc['_id']}.html",
                f"<html><head><title>{title}</title></head><p>{text}</p>",
            )
        elif kind == 2:
            write_pdf(root / "pdf" / f"{doc['_id']}.pdf", [wrapped(text)], title)
        elif kind == 4:
            (root / "docx").mkdir(parents=True, exist_ok=True)
            write_docx(root / "docx" / f"{doc['_id']}.docx", text.split("\n"), title=title)
        else:  # plain text has no title markup: the title is the text's first line, as Cranfield's is
            write(root / "txt" / f"{doc['_id']}.txt", text)
    return root


def test_a_mixed_folder_ranks_like_the_same_documents_as_jsonl(tmp_path: Path, data_dir: Path) -> None:
    documents = cranfield(data_dir, 40)
    folder = mixed_folder(documents, tmp_path / "docs")
    jsonl = tmp_path / "same.jsonl"
    for number, doc in enumerate(documents):
        folder_id = f"{['md', 'html', 'pdf', 'txt', 'docx'][number % 5]}/{doc['_id']}"
        title = "" if number % 5 == 3 else doc["title"]
        with jsonl.open("a") as handle:
            handle.write(json.dumps({"_id": folder_id, "title": title, "text": doc["text"]}) + "\n")
    from_folder = Index.load(build_index(folder, tmp_path / "folder-idx", "bm25", show_progress=False))
    from_jsonl = Index.load(build_index(jsonl, tmp_path / "jsonl-idx", "bm25", show_progress=False))
    queries = [
        "boundary layer in shear flow",
        "wing in a propeller slipstream",
        "heat transfer at high speed",
    ]
    for mine, theirs in zip(
        from_folder.batch_search(queries, 10), from_jsonl.batch_search(queries, 10), strict=True
    ):
        assert [hit.doc_id for hit in mine] == [hit.doc_id for hit in theirs]
        assert [hit.score for hit in mine] == pytest.approx([hit.score for hit in theirs], abs=1e-4)
    assert from_folder.search("slipstream", 1)[0].doc_id == "md/1"
    pdfs = from_folder.search("boundary layer", 10, filter={"format": "pdf"})
    assert pdfs and all(hit.doc_id.startswith("pdf/") for hit in pdfs)


def test_cli_indexes_a_folder_and_names_what_it_left_out(tmp_path: Path, data_dir: Path) -> None:
    folder = mixed_folder(cranfield(data_dir, 8), tmp_path / "docs")
    write(folder / "sheet.xlsx", b"PK")
    result = run_cli("index", str(folder), "-o", str(tmp_path / "idx"), "--encoder", "bm25")
    assert "warning:" in result.stderr and "sheet.xlsx" in result.stderr
    found = run_cli("search", str(tmp_path / "idx"), "wing in a propeller slipstream", "-k", "1", "--json")
    assert json.loads(found.stdout)[0]["doc_id"] == "md/1"


def test_a_file_settled_before_it_is_read_gets_its_size_and_time_as_stamp(tmp_path: Path) -> None:
    settled, recent = write(tmp_path / "a.txt", "wing flutter"), write(tmp_path / "b.txt", "shock wave")
    hour_ago = time.time_ns() - 3600 * 10**9
    os.utime(settled, ns=(hour_ago, hour_ago))
    os.utime(recent, ns=(time.time_ns() - 10**9,) * 2)  # a second ago: an edit could still keep it
    assert read_file(settled, tmp_path).stamp == f"12:{hour_ago}"
    assert read_file(recent, tmp_path).stamp is None
    assert file_stamp(recent.stat(), now_ns=recent.stat().st_mtime_ns + SETTLED_NS) is not None


def test_a_file_deleted_after_the_listing_is_skipped_and_named(tmp_path: Path) -> None:
    kept, deleted = write(tmp_path / "a.txt", "wing flutter"), write(tmp_path / "b.md", "# Shock\n\nwaves")
    listed = folder_files(tmp_path)
    deleted.unlink()  # a live folder: an editor removed it while the index was being built
    with pytest.warns(TesseraWarning, match="1 files were deleted while being read: b.md"):
        documents = list(read_folder(tmp_path, listed))
    assert [d.id for d in documents] == ["a"] and documents[0].file == str(kept)
