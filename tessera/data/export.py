"""Any corpus written out as one JSONL file (`tessera data extract`): what the readers made of a
folder of PDFs, Word files or books, to inspect, or to hand to another tool (pyserini, BEIR).

Each line is `{"_id", "title", "text", "metadata"}`, the form the JSONL reader reads back into
the same documents. The file is written beside its final name and renamed into place whole
after an fsync, so an interrupted or failed export leaves no file, never part of one."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tessera.data.corpus import open_corpus
from tessera.data.document import id_problem
from tessera.durable import check_outputs
from tessera.errors import CorpusError, TesseraError
from tessera.progress import progress_bar


def export_corpus(
    corpus: str | Path, output: str | Path, overwrite: bool = False, show_progress: bool = True
) -> int:
    """Write every document of `corpus` to the JSONL file `output`; returns how many."""
    target = Path(output).expanduser()
    check_outputs({"output": target}, inputs=[corpus])  # never a file it reads (a folder's note)
    if target.exists() and not overwrite:
        raise TesseraError("already exists (use --overwrite)", file=target, field="output")
    source = open_corpus(corpus)
    if source.folder and source.folder[0].resolve() in target.resolve().parents:
        # Refused on the first run too, not only once the file exists (then it is the folder's
        # own file to `check_outputs`); as `corpus.jsonl` it would make the folder a BEIR folder.
        raise TesseraError(
            "is inside the folder being extracted: write it elsewhere", file=target, field="output"
        )
    partial = target.with_name(target.name + ".partial")
    target.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    try:
        first: dict[str, str] = {}  # id -> where it was read first
        with partial.open("w", encoding="utf-8") as handle, progress_bar(show_progress) as bar:
            task = bar.add_task(f"extracting {source.name}", total=source.size_hint) if bar else None
            for doc in source:
                if problem := id_problem(doc.id):  # what `index` refuses, refused before it is written
                    raise CorpusError(problem, file=doc.file, line=doc.line, field="_id")
                where = f"{doc.file}:{doc.line}" if doc.file and doc.line else doc.file or "an earlier record"
                if doc.id in first:
                    why = f"duplicate document id '{doc.id}' (first at {first[doc.id]})"
                    raise CorpusError(why, file=doc.file, line=doc.line, field="_id")
                first[doc.id] = where
                record = {"_id": doc.id, "title": doc.title, "text": doc.text, "metadata": doc.metadata}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
                if bar:
                    bar.advance(task)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return count
