"""Encoder runtimes (`SPEC@bf16|onnx|onnx-int8|openvino`): same vectors as fp32 within
tolerance, the spec round-trips through the manifest, exports are cached, and a missing
engine is a clear error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tessera.errors import EncoderError
from tessera.indexing.builder import build_index
from tessera.indexing.manifest import Manifest
from tessera.models.bundled import bundled_path
from tessera.models.dense import DenseEncoder
from tessera.models.registry import canonical_spec, load_encoder, load_query_encoder
from tessera.models.runtimes import split_runtime
from tessera.models.runtimes.light import LightEncoder, light_encoder
from tessera.retrieval.index import Index

RUNTIMES = ["bf16", "onnx", "onnx-int8", "openvino"]


@pytest.fixture(scope="module")
def cranfield_sample(data_dir: Path) -> tuple[list[str], list[str]]:
    """120 Cranfield documents (title and text, as the builder joins them) and 20 test queries."""
    source = data_dir / "cranfield-beir"
    docs = [json.loads(line) for line in (source / "corpus.jsonl").read_text().splitlines()[:120]]
    queries = [json.loads(line)["text"] for line in (source / "queries.jsonl").read_text().splitlines()[:20]]
    return [f"{d['title']}\n{d['text']}".strip() for d in docs], queries


@pytest.fixture(scope="module")
def fp32_vectors(cranfield_sample) -> tuple[np.ndarray, np.ndarray]:
    docs, queries = cranfield_sample
    encoder = load_encoder("minilm")
    return encoder.encode_docs(docs), encoder.encode_queries(queries)


def test_runtime_suffix_parses_and_fp32_is_never_written() -> None:
    assert split_runtime("minilm@onnx-int8") == ("minilm", "onnx-int8")
    assert split_runtime("minilm") == ("minilm", "fp32")
    assert split_runtime("some/folder@v2") == ("some/folder@v2", "fp32")  # not a runtime: part of the name
    assert canonical_spec("minilm@fp32") == "minilm"
    assert canonical_spec("minilm@bf16") == "minilm@bf16"
    with pytest.raises(EncoderError, match="names a runtime but no encoder"):
        split_runtime("@onnx")


def test_auto_resolves_by_hardware_and_is_stored_resolved(tmp_path: Path) -> None:
    from tessera.models.runtimes import auto_runtime

    def cpu(flags: str) -> Path:
        path = tmp_path / f"cpuinfo-{len(flags)}"
        path.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        return path

    no_gpu = tmp_path / "no-gpus"
    assert auto_runtime(cpu("fpu sse avx2 avx512f amx_bf16 amx_int8"), no_gpu) == "bf16"
    assert auto_runtime(cpu("fpu sse avx2 avx512f avx512_bf16"), no_gpu) == "bf16"
    assert auto_runtime(cpu("fpu sse avx2 avx512f avx512_vnni"), no_gpu) == "fp32"
    gpus = tmp_path / "gpus"
    (gpus / "0000:01:00.0").mkdir(parents=True)
    assert auto_runtime(cpu("fpu sse"), gpus) == "bf16"
    here = auto_runtime()
    assert canonical_spec("minilm@auto") == canonical_spec(f"minilm@{here}")
    assert canonical_spec("bm25@auto") == canonical_spec("bm25")  # nothing to choose: no error


@pytest.mark.parametrize("spec", ["bm25@onnx", "llm:smollm2@bf16", "m2:/tmp/x@openvino"])
def test_runtime_refused_where_it_cannot_apply(spec: str) -> None:
    with pytest.raises(EncoderError, match="apply to sentence-transformers"):
        canonical_spec(spec)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_runtime_matches_fp32(runtime: str, cranfield_sample, fp32_vectors) -> None:
    docs, queries = cranfield_sample
    ref_docs, ref_queries = fp32_vectors
    encoder = load_encoder(f"minilm@{runtime}")
    assert encoder.spec == f"minilm@{runtime}"
    got_docs, got_queries = encoder.encode_docs(docs), encoder.encode_queries(queries)
    assert got_docs.dtype == np.float32 and got_docs.shape == ref_docs.shape
    assert (got_docs * ref_docs).sum(1).min() >= 0.99
    assert (got_queries * ref_queries).sum(1).min() >= 0.99
    # Rankings: the same best document for nearly every query, the top 10 nearly the same.
    ref_rank = np.argsort(-(ref_queries @ ref_docs.T), axis=1)[:, :10]
    got_rank = np.argsort(-(got_queries @ got_docs.T), axis=1)[:, :10]
    assert (ref_rank[:, 0] == got_rank[:, 0]).mean() >= 0.9
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ref_rank, got_rank, strict=True)])
    assert overlap >= 0.9
    if runtime == "onnx":  # float32 on another engine: the same numbers up to rounding
        np.testing.assert_allclose(got_docs, ref_docs, atol=1e-4)
        assert (ref_rank == got_rank).all()


def test_openvino_shape_padding_leaves_vectors_unchanged(
    cranfield_sample, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lengths padded to a multiple of 8 are masked: the same vectors as unpadded inputs."""
    from tessera.models.runtimes import engines

    docs, queries = cranfield_sample
    encoder = load_encoder("minilm@openvino")
    padded = encoder.encode_docs(docs[:40]), encoder.encode_queries(queries)
    monkeypatch.setattr(engines, "SHAPE_STEP", 1)
    exact = encoder.encode_docs(docs[:40]), encoder.encode_queries(queries)
    for got, want in zip(padded, exact, strict=True):
        assert (got * want).sum(1).min() >= 0.9999
    assert engines._pad_length(np.ones((2, 13), dtype=np.int64), 8).shape == (2, 16)
    assert engines._pad_length(np.ones((2, 16), dtype=np.int64), 8).shape == (2, 16)


def test_bf16_stores_linear_weights_in_bf16_and_keeps_layernorm_fp32() -> None:
    """Stored bf16 weights spare autocast a cast per weight per pass; LayerNorm stays fp32."""
    import torch

    encoder = load_encoder("minilm@bf16")
    modules = list(encoder.model.modules())
    linear = [m.weight.dtype for m in modules if isinstance(m, torch.nn.Linear)]
    norms = [m.weight.dtype for m in modules if isinstance(m, torch.nn.LayerNorm)]
    assert linear and set(linear) == {torch.bfloat16}
    assert norms and set(norms) == {torch.float32}
    vectors = encoder.encode_docs(["shock waves in carbon dioxide", "boundary layer transition"])
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)


def test_manifest_round_trips_runtime(cranfield_head: Path, tmp_path: Path) -> None:
    out = build_index(cranfield_head, tmp_path / "idx", encoder="minilm@onnx-int8", show_progress=False)
    assert Manifest.read(out).encoder == "minilm@onnx-int8"
    index = Index.load(out)
    assert index.encoder.spec == "minilm@onnx-int8"  # queries encoded by the documents' runtime
    reference = build_index(cranfield_head, tmp_path / "ref", show_progress=False)
    query = "experimental studies of heat transfer in hypersonic flow"
    got = [hit.doc_id for hit in index.search(query, k=10)]
    want = [hit.doc_id for hit in Index.load(reference).search(query, k=10)]
    assert got[0] == want[0] and len(set(got) & set(want)) >= 8


def test_missing_engine_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    with pytest.raises(EncoderError, match="runtime 'openvino' needs the package openvino"):
        DenseEncoder("minilm@openvino", bundled_path("minilm"), runtime="openvino")


def test_quantized_export_is_cached_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime.quantization
    import torch

    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    quantize, read = onnxruntime.quantization.quantize_dynamic, []
    monkeypatch.setattr(
        onnxruntime.quantization, "quantize_dynamic", lambda *a, **k: read.append(a[0]) or quantize(*a, **k)
    )
    DenseEncoder("minilm@onnx-int8", bundled_path("minilm"), runtime="onnx-int8")
    exports = sorted(p.relative_to(tmp_path) for p in tmp_path.glob("runtimes/*/model.onnx"))
    assert len(exports) == 2  # the float32 export and its quantized copy
    # quantize_dynamic writes a file beside what it reads: this process's copy, not the shared
    # export two processes quantizing at once both wrote beside (one then lost it)
    assert len(read) == 1 and Path(read[0]).parent.name.endswith(".tmp")
    assert all(
        sorted(p.name for p in e.parent.iterdir()) == ["inputs.json", "model.onnx"]
        for e in (tmp_path / p for p in exports)
    )

    def refuse(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(torch.onnx, "export", refuse)
    monkeypatch.setattr(onnxruntime.quantization, "quantize_dynamic", refuse)
    encoder = DenseEncoder("minilm@onnx-int8", bundled_path("minilm"), runtime="onnx-int8")
    assert encoder.encode_queries(["shock waves"]).shape == (1, 384)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.glob("runtimes/*/model.onnx")) == exports


def test_multivector_runs_bf16_only(token_model: Path) -> None:
    bf16 = load_encoder(f"colbert:{token_model}@bf16")
    fp32 = load_encoder(f"colbert:{token_model}")
    text = "the boundary layer of a flat plate in supersonic flow"
    got, want = bf16.encode_docs([text])[0], fp32.encode_docs([text])[0]
    assert got.shape == want.shape and got.dtype == np.float32
    assert (got * want).sum(1).min() >= 0.98
    with pytest.raises(EncoderError, match="single-vector encoders"):
        load_encoder(f"colbert:{token_model}@onnx")


@pytest.mark.parametrize("runtime", ["onnx", "onnx-int8"])
def test_light_encoder_equals_full_one(runtime: str, cranfield_sample) -> None:
    docs, queries = cranfield_sample
    full = load_encoder(f"minilm@{runtime}")  # makes the export the light encoder reads
    light = load_query_encoder(f"minilm@{runtime}")
    assert isinstance(light, LightEncoder) and light.spec == full.spec and light.dim == full.dim
    np.testing.assert_allclose(light.encode_queries(queries), full.encode_queries(queries), atol=1e-5)
    np.testing.assert_allclose(light.encode_docs(docs[:30]), full.encode_docs(docs[:30]), atol=1e-4)


def test_light_encoder_declines_what_it_cannot_reproduce(tmp_path: Path) -> None:
    folder = tmp_path / "prompted"
    folder.mkdir()
    for item in bundled_path("minilm").iterdir():
        (folder / item.name).symlink_to(item)
    (folder / "config_sentence_transformers.json").unlink()
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {"query": "query: "}}))
    load_encoder("minilm@onnx")
    assert light_encoder("minilm@onnx", bundled_path("minilm"), "onnx") is not None
    assert light_encoder("x@onnx", folder, "onnx") is None  # a prompt: sentence-transformers must add it
    assert light_encoder("minilm@bf16", bundled_path("minilm"), "bf16") is None  # not an export


QUERY = "heat transfer to a cylinder in hypersonic flow"


def search_in_fresh_process(index: Path, modules: list[str]) -> tuple[list[list], list[bool]]:
    """([[doc id, score], ...] of QUERY's top 5, whether each of `modules` was imported) from a
    new Python process: what a one-shot `tessera search` loads."""
    script = (
        "import json, sys\n"
        "from tessera.retrieval.index import Index\n"
        f"hits = Index.load({str(index)!r}).search({QUERY!r}, k=5)\n"
        f"loaded = [name in sys.modules for name in {modules!r}]\n"
        "print(json.dumps([[[h.doc_id, h.score] for h in hits], loaded]))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    hits, loaded = json.loads(result.stdout.strip().splitlines()[-1])
    return hits, loaded


def test_search_of_an_exported_index_imports_no_torch(cranfield_head: Path, tmp_path: Path) -> None:
    out = build_index(cranfield_head, tmp_path / "idx", encoder="minilm@onnx", show_progress=False)
    want = [hit.doc_id for hit in Index.load(out).search(QUERY, k=5)]
    got, loaded = search_in_fresh_process(out, ["torch", "transformers"])
    assert [doc_id for doc_id, _ in got] == want
    assert loaded == [False, False]


def test_default_runtime_queries_load_a_trace_with_the_same_vectors(
    cranfield_sample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tessera.models.runtimes.traced import TracedEncoder, traced_encoder

    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    docs, queries = cranfield_sample
    full = load_encoder("minilm")
    assert traced_encoder("minilm", bundled_path("minilm")) is None  # not traced yet
    assert load_query_encoder.__wrapped__("minilm") is full  # the full encoder, which leaves a trace
    traced = traced_encoder("minilm", bundled_path("minilm"))
    assert isinstance(traced, TracedEncoder) and traced.spec == full.spec and traced.dim == full.dim
    # bitwise equal: same tokens, same batches (padded), same float32 operations
    assert np.array_equal(traced.encode_queries(queries), full.encode_queries(queries))
    assert np.array_equal(traced.encode_docs(docs[:70]), full.encode_docs(docs[:70]))
    assert np.array_equal(traced.encode_queries(queries[:1]), full.encode_queries(queries[:1]))


def test_a_damaged_cached_export_is_made_again_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cranfield_sample
) -> None:
    """A truncated trace or ONNX graph in the cache broke every search, of plain minilm indexes too."""
    from tessera.models.runtimes.export import INPUTS_FILE, TRACED_FILE, folder_key
    from tessera.models.runtimes.traced import traced_encoder

    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    queries = cranfield_sample[1][:3]
    full = load_encoder("minilm")
    load_query_encoder.__wrapped__("minilm")  # leaves a trace
    trace = tmp_path / "runtimes" / folder_key(bundled_path("minilm"), "fp32") / TRACED_FILE
    trace.write_bytes(trace.read_bytes()[:5000])
    assert traced_encoder("minilm", bundled_path("minilm")) is None and not trace.parent.exists()
    assert np.array_equal(
        load_query_encoder.__wrapped__("minilm").encode_queries(queries), full.encode_queries(queries)
    )
    graph = tmp_path / "runtimes" / folder_key(bundled_path("minilm"), "onnx") / "model.onnx"
    graph.parent.mkdir(parents=True)
    graph.write_bytes(b"not a graph")
    (graph.parent / INPUTS_FILE).write_text('["input_ids", "attention_mask", "token_type_ids"]')
    assert light_encoder("minilm@onnx", bundled_path("minilm"), "onnx") is None and not graph.parent.exists()


def test_an_inexact_trace_is_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from tessera.models.runtimes.traced import export_traced

    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(torch, "equal", lambda a, b: False)
    assert export_traced(load_encoder("minilm").model, bundled_path("minilm")) is None
    assert not list(tmp_path.glob("runtimes/*/model.pt"))


def test_search_of_a_default_index_skips_sentence_transformers(cranfield_head: Path, tmp_path: Path) -> None:
    from tessera.models.runtimes.traced import export_traced

    out = build_index(cranfield_head, tmp_path / "idx", show_progress=False)
    want = Index.load(out).search(QUERY, k=5)
    assert export_traced(load_encoder("minilm").model, bundled_path("minilm")) is not None
    got, loaded = search_in_fresh_process(out, ["sentence_transformers", "transformers"])
    assert got == [[hit.doc_id, hit.score] for hit in want]
    assert loaded == [False, False]
