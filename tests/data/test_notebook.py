"""Jupyter notebooks as documents: Markdown cells read as Markdown, code as text, outputs not."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tessera.data.files import read_file
from tessera.errors import CorpusError


def write_notebook(path: Path, cells: list[dict], metadata: dict | None = None) -> Path:
    kernel = {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}
    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": metadata or kernel, "cells": cells}
    path.write_text(json.dumps(notebook, indent=1))
    return path


def markdown(source: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": source.splitlines(keepends=True)}


def code(source: str, output: str = "") -> dict:
    outputs = [{"output_type": "stream", "name": "stdout", "text": [output]}] if output else []
    return {"cell_type": "code", "metadata": {}, "source": source, "outputs": outputs, "execution_count": 1}


def test_notebooks_read_as_the_markdown_they_are(tmp_path: Path, data_dir: Path) -> None:
    with (data_dir / "cranfield-beir" / "corpus.jsonl").open() as handle:
        doc = json.loads(next(handle))
    abstract = " ".join(doc["text"].split())
    cells = [
        markdown(f"# Slipstream study\n\n{abstract}"),
        code("lift = 0.5 * rho * v**2  # ```not a fence end```\nprint(lift)", output="12.5 (an output)"),
        {"cell_type": "raw", "metadata": {}, "source": "raw text is not read"},
        markdown("## Results\n\nThe *wing* stalls at **high** speed."),
    ]
    document = read_file(write_notebook(tmp_path / "study.ipynb", cells), tmp_path)
    assert (document.id, document.title) == ("study", "Slipstream study")
    assert document.text == "\n".join(
        [abstract, "lift = 0.5 * rho * v**2  # ```not a fence end```\nprint(lift)", "Results",
         "The wing stalls at high speed."]
    )  # fmt: skip
    assert document.metadata == {**document.metadata, "format": "notebook", "language": "python", "cells": 3}

    titled = read_file(write_notebook(tmp_path / "t.ipynb", cells[:1], {"title": "Notes on wings"}), tmp_path)
    assert (titled.title, titled.text) == ("Notes on wings", f"Slipstream study\n{abstract}")  # heading kept

    bad = tmp_path / "bad.ipynb"
    bad.write_text('{"cells": [\n  {"cell_type": "code",\n}')
    with pytest.raises(CorpusError, match="is not a notebook: malformed JSON") as info:
        read_file(bad, tmp_path)
    assert (info.value.file, info.value.line) == (str(bad), 3)
    old = tmp_path / "old.ipynb"
    old.write_text(json.dumps({"nbformat": 3, "worksheets": [{"cells": []}]}))
    with pytest.raises(CorpusError, match="not an nbformat 4 notebook"):
        read_file(old, tmp_path)
    for source, said in [(None, "null"), (["a", None], '["a", null]'), (5, "5")]:  # read as "None", "5"
        damaged = write_notebook(
            tmp_path / "damaged.ipynb", [markdown("# Fine"), {"cell_type": "code", "source": source}]
        )
        with pytest.raises(
            CorpusError, match=re.escape(f"cell 2's `source` is {said}, neither text nor")
        ) as info:
            read_file(damaged, tmp_path)
        assert info.value.file == str(damaged)
