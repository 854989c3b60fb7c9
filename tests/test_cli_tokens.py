"""Token indexes through the CLI: index (the fixture), search and eval in both modes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tessera.retrieval.index import Index
from tests.conftest import run_cli


def test_search_and_eval_a_token_index(cranfield_tokens: Path, cranfield_head: Path, tmp_path: Path) -> None:
    query = ["search", str(cranfield_tokens), "boundary layer transition", "-k", "5", "--json"]
    hits = json.loads(run_cli(*query, "--param", "mode=xtr").stdout)
    assert [h["rank"] for h in hits] == [1, 2, 3, 4, 5] and all(h["text"] for h in hits)
    assert 0 < hits[-1]["score"] <= hits[0]["score"] <= 1  # XTR averages cosines over query tokens

    # cranfield_head: the first 150 Cranfield documents and the 46 test queries judged on them.
    # There BM25 reaches nDCG@10 0.49 and a random order about 0.05; the untrained projection of
    # MiniLM's token embeddings gets 0.32 in either mode (R@100 0.93 ColBERT, 0.97 XTR).
    metrics = {}
    for mode in ("colbert", "xtr"):
        out = tmp_path / f"{mode}.json"
        args = ["eval", str(cranfield_tokens), "--dataset", str(cranfield_head), "--metrics", "nDCG@10"]
        run_cli(*args, "R@100", "--depth", "100", "--json", str(out), "--param", f"mode={mode}")
        metrics[mode] = json.loads(out.read_text())
        assert list(metrics[mode]) == ["nDCG@10", "R@100"]
        assert 0.2 < metrics[mode]["nDCG@10"] < 0.9 and metrics[mode]["R@100"] > 0.8
    assert metrics["colbert"] != metrics["xtr"]


def test_mode_defaults_to_the_spec_prefix(cranfield_tokens: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(cranfield_tokens, tmp_path / "xtr-index"))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["encoder"] = "xtr:" + manifest["encoder"].partition(":")[2]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    as_xtr, as_colbert = Index.load(copy), Index.load(cranfield_tokens)
    assert (as_xtr.backend.mode, as_colbert.backend.mode) == ("xtr", "colbert")
    forced = Index.load(cranfield_tokens, search_params={"mode": "xtr"})
    query = "boundary layer transition"
    assert as_xtr.search(query, 5) == forced.search(query, 5) != as_colbert.search(query, 5)


def test_token_index_errors_are_one_line(
    cranfield_tokens: Path, tmp_path: Path, cranfield_head: Path
) -> None:
    corpus = str(cranfield_head / "corpus.jsonl")
    result = run_cli("index", corpus, "-o", str(tmp_path / "i"), "--encoder", "colbert:/none", check=False)
    assert result.returncode == 1 and "no such model folder '/none'" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cli("search", str(cranfield_tokens), "q", "--param", "k_prime=many", check=False)
    assert result.returncode == 1 and "k_prime must be a positive whole number" in result.stderr
    result = run_cli(
        "reindex", str(cranfield_tokens), "-o", str(tmp_path / "r"), "--index", "binary", check=False
    )
    assert result.returncode == 1 and "token indexes take a faiss factory string" in result.stderr
