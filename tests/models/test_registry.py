"""The spec dispatch table: which loader each spec goes to, decided without loading anything."""

from pathlib import Path

import pytest

from tessera.errors import EncoderError
from tessera.models.registry import check_known, encoder_kind, is_single_vector, load_encoder


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("http://127.0.0.1:8080#e5", "remote"),
        ("bm25", "lexical"),
        ("bm25:k1=0.9,b=0.4", "lexical"),
        ("llm:smollm2+tp", "llm"),
        ("m2:/models/m2-8k", "m2"),
        ("colbert:/models/colbert", "multivector"),
        ("xtr:/models/xtr@bf16", "multivector"),
        ("minilm", "bundled"),
        ("minilm@onnx", "bundled"),
        ("sentence-transformers/all-mpnet-base-v2", "hub"),
        ("no-such-model", "unknown"),
    ],
)
def test_encoder_kind(spec: str, kind: str) -> None:
    assert encoder_kind(spec) == kind


def test_folders_and_unknown_names(tmp_path: Path) -> None:
    assert encoder_kind(str(tmp_path)) == "folder"
    assert is_single_vector(str(tmp_path)) and is_single_vector("minilm")
    assert not is_single_vector("bm25") and not is_single_vector("colbert:/models/colbert")
    check_known("org/model")  # a hub name passes without the network
    for call in (check_known, load_encoder):
        with pytest.raises(
            EncoderError, match="unknown encoder .mini-lm.: not a folder, a hub name, or one of bm25, minilm"
        ):
            call("mini-lm")
    with pytest.raises(EncoderError, match="runtimes .* apply to sentence-transformers"):
        encoder_kind("bm25:k1=1.0@onnx")


def test_a_missing_model_folder_is_said_before_the_hubs_words(tmp_path: Path) -> None:
    """`--rerank cross-encoder:out/ce` before training it answered "We couldn't connect to
    'https://huggingface.co'" (offline), not that there is no such folder."""
    from tessera.retrieval.rerank import load_reranker

    missing = tmp_path / "out" / "ce"
    said = f"cannot load cross-encoder '{missing}': no folder '{missing}' here"
    with pytest.raises(EncoderError, match=said):
        load_reranker(f"cross-encoder:{missing}")
    with pytest.raises(EncoderError, match=f"no folder '{missing}' here, and as a Hugging Face hub name"):
        load_encoder(str(missing))
