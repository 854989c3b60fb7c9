"""`tessera data extract`: a folder of documents written as JSONL reads back as the same
documents; failures leave no file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tessera.data.corpus import open_corpus
from tessera.data.export import export_corpus
from tessera.errors import CorpusError, TesseraError
from tests.conftest import run_cli


def notes(data_dir: Path, folder: Path) -> Path:
    """Four Cranfield documents as Markdown (title heading, front matter) and plain text."""
    folder.mkdir()
    with (data_dir / "cranfield-beir" / "corpus.jsonl").open() as handle:
        docs = [json.loads(next(handle)) for _ in range(4)]
    for n, doc in enumerate(docs):
        title = " ".join(doc["title"].split())
        if n % 2:
            (folder / f"{doc['_id']}.md").write_text(f"---\ntopic: aero\n---\n# {title}\n\n{doc['text']}\n")
        else:
            (folder / f"{doc['_id']}.txt").write_text(doc["text"])
    return folder


def fields(documents) -> list[tuple]:
    return [(d.id, d.title, d.text, d.metadata) for d in documents]


def test_extracted_documents_read_back_the_same(data_dir: Path, tmp_path: Path) -> None:
    folder = notes(data_dir, tmp_path / "notes")
    output = tmp_path / "out" / "notes.jsonl"
    assert export_corpus(folder, output, show_progress=False) == 4
    assert fields(open_corpus(output)) == fields(open_corpus(folder))
    assert json.loads(output.read_text().splitlines()[1])["metadata"]["topic"] == "aero"
    with pytest.raises(TesseraError, match="already exists"):
        export_corpus(folder, output, show_progress=False)
    with pytest.raises(TesseraError, match="is inside the folder being extracted"):
        export_corpus(folder, folder / "corpus.jsonl", show_progress=False)
    kept = next(path for path in folder.iterdir() if path.is_file())  # one of the documents it reads
    before = kept.read_bytes()
    with pytest.raises(TesseraError, match="is a file of the input folder"):
        export_corpus(folder, kept, overwrite=True, show_progress=False)
    assert kept.read_bytes() == before

    (folder / "broken.docx").write_bytes(b"PK not a zip")
    with pytest.raises(CorpusError, match="cannot be read as a Word document") as info:
        export_corpus(folder, tmp_path / "again.jsonl", show_progress=False)
    assert info.value.file == str(folder / "broken.docx")
    assert not list(tmp_path.glob("again.jsonl*"))  # nothing written, no partial file

    (folder / "broken.docx").unlink()
    shown = run_cli("data", "extract", str(folder), "-o", str(output), "--overwrite")
    assert "4 documents written" in shown.stdout


def test_an_id_twice_is_refused_as_index_refuses_it(tmp_path: Path) -> None:
    corpus = tmp_path / "dup.jsonl"
    corpus.write_text(
        '{"_id": "a", "text": "one"}\n{"_id": "b", "text": "two"}\n{"_id": "a", "text": "dup"}\n'
    )
    with pytest.raises(
        CorpusError, match=r"dup.jsonl:3, field '_id': duplicate document id 'a' \(first at .*dup.jsonl:1\)"
    ):
        export_corpus(corpus, tmp_path / "out.jsonl", show_progress=False)
    assert not list(tmp_path.glob("out.jsonl*"))
