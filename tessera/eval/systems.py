"""The systems an evaluation suite compares, parsed from `[NAME=]SPEC` strings.

Three kinds, one syntax:
- an encoder spec as `tessera index --encoder` takes it, optionally `SPEC@FACTORY` for the faiss
  backend (`minilm@OPQ48,PQ48`, `minilm@bf16@OPQ48,PQ48`: a runtime suffix belongs to the
  encoder); the suite builds its index on every collection;
- `index:PATH`, an index built elsewhere (a trained JPQ index, say), where `{collection}` in PATH
  is replaced by each collection's name; a collection without one is reported, not dropped;
- `rrf:A+B[+...]`, reciprocal rank fusion of other systems of the same suite, by name, or
  `wsum:A+B[+...]`, their min-max normalised scores summed, `wsum:A^0.3+B^0.7` weighted
  (`retrieval.fusion`).

A built or prebuilt system takes search parameters after `?`, as `--param` does:
`minilm@IVF1024,Flat?nprobe=32`, `bm25?prf=rocchio`, `minilm?prf_depth=5&prf_beta=0.5`,
`index:PATH?nprobe=64`. The index is the one without them (built once); only searching differs.
Any system, a fusion too, takes a second stage the same way: `bm25?rerank=minilm`,
`rrf:bm25+minilm?rerank=qlm&rerank_depth=20` (`retrieval.rerank`; depth 100 by default), and
MMR, after the reranker where both are given: `bm25?mmr=0.5`, `minilm?mmr=0.7&mmr_depth=30`
(`retrieval.diversify`; a first page of 10 picked from the top 40 by default).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tessera.errors import TesseraError
from tessera.models.bm25 import parse_bm25, with_settings
from tessera.models.bundled import BUNDLED
from tessera.models.registry import canonical_spec, is_lexical
from tessera.models.runtimes import AUTO, RUNTIMES, split_runtime
from tessera.retrieval.diversify import Mmr, as_mmr
from tessera.retrieval.fusion import FUSIONS, Run, check_weights
from tessera.retrieval.params import parse_params, route_params
from tessera.retrieval.rerank import RERANK_DEPTH, check_rerank_depth, check_reranker_spec

if TYPE_CHECKING:
    from tessera.retrieval.index import Index

# No spec syntax in a name (`bm25:k1=1.2` is a spec, not NAME=SPEC), nor a Markdown table's `|`.
_NAME = re.compile(r"[^=:/@?|\\\s]+")
FUSION_PREFIXES = tuple(f"{method}:" for method in FUSIONS)
PREBUILT_PREFIX = "index:"
DEFAULT_FACTORY = "Flat"


def slug(name: str) -> str:
    """`name` as a file name: runs of anything but letters, digits, `_.-` become `_`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


@dataclass(frozen=True)
class System:
    name: str
    spec: str  # as the user wrote it after NAME=
    encoder: str = ""
    factory: str = DEFAULT_FACTORY
    prebuilt: str = ""  # index directory template ({collection} replaced)
    fuse: tuple[str, ...] = ()
    fusion: str = ""  # rrf or wsum, for a fusion
    weights: tuple[float, ...] | None = None  # wsum's, when not equal
    params: tuple[tuple[str, float | str], ...] = ()  # search parameters (`?NAME=VALUE&...`)
    rerank: str = ""  # a second stage (`?rerank=SPEC`), over the top `rerank_depth`
    rerank_depth: int = RERANK_DEPTH
    mmr: Mmr | None = None  # then MMR (`?mmr=WEIGHT[&mmr_depth=N]`) for a first page of MMR_PAGE

    @property
    def second_stage(self) -> bool:
        return bool(self.rerank) or self.mmr is not None

    def second_stages(self, queries: dict[str, str], run: Run, index: Index) -> Run:
        """`run` reranked and diversified as the system asks (`index` gives the text)."""
        from tessera.eval.evaluate import MMR_PAGE
        from tessera.retrieval.query_set import diversify_run, rerank_run

        if self.rerank:
            run = rerank_run(self.rerank, queries, run, index, self.rerank_depth, False)
        return diversify_run(self.mmr, run, [index], MMR_PAGE, False) if self.mmr is not None else run

    @property
    def search_params(self) -> dict[str, float | str]:
        return dict(self.params)

    @property
    def kind(self) -> str:
        return "fusion" if self.fuse else "prebuilt" if self.prebuilt else "built"

    @property
    def slug(self) -> str:
        """The name as a file name (runs/DATASET/SLUG.trec, indexes/COLLECTION/SLUG)."""
        return slug(self.name)

    def index_dir(self, collection: str) -> str:
        return self.prebuilt.replace("{collection}", collection)


def parse_system(text: str) -> System:
    """`[NAME=]SPEC`; NAME defaults to SPEC. Encoder specs are checked now, not mid-suite."""
    name, spec = text, text
    head, sep, tail = text.partition("=")
    if sep and _NAME.fullmatch(head) and tail:
        name, spec = head, tail
    if not spec.strip():
        raise TesseraError(f"empty system spec in '{text}'", field="system")
    if not name.strip("."):  # `..` would be a folder above the system's own under the report
        raise TesseraError(f"'{text}': a system name needs more than dots", field="system")
    spec_only, params, second = _search_params(spec, text)
    if spec.startswith(FUSION_PREFIXES):
        if params:
            why = f"'{text}': a fusion takes no search parameters; give them to the systems it fuses"
            raise TesseraError(why, field="system")
        return replace(_parse_fusion(name, spec_only, text), spec=spec, **second)
    if spec_only.startswith(PREBUILT_PREFIX):
        return System(name, spec, prebuilt=spec_only[len(PREBUILT_PREFIX) :], params=params, **second)
    encoder, at, factory = spec_only.rpartition("@")
    if not at or factory in (*RUNTIMES, AUTO):  # `minilm@bf16` is a runtime, not a faiss factory
        encoder, factory = spec_only, DEFAULT_FACTORY
    if not encoder or not factory:
        raise TesseraError(f"'{text}': expected SPEC@FACTORY, e.g. minilm@OPQ48,PQ48", field="system")
    _check_encoder(encoder, text)
    if params:  # a parameter the index kind cannot take, or a bad value, fails now, not mid-suite
        lexical = is_lexical(encoder)
        (routed,) = route_params(["lucene" if lexical else "faiss"], dict(params))
        if lexical:
            with_settings(parse_bm25(encoder), routed, field="system")
    return System(name, spec, encoder=encoder, factory=factory, params=params, **second)


def _search_params(spec: str, text: str) -> tuple[str, tuple[tuple[str, float | str], ...], dict]:
    """`SPEC?a=1&b=x&rerank=minilm` -> (SPEC, (("a", 1.0), ("b", "x")), {"rerank": "minilm"})."""
    spec_only, mark, query = spec.partition("?")
    if not mark:
        return spec, (), {}
    if not spec_only or not query:
        raise TesseraError(f"'{text}': expected SPEC?NAME=VALUE[&NAME=VALUE...]", field="system")
    params = parse_params(query.split("&"), field="system")
    second: dict = {}
    if "rerank" in params:
        second["rerank"] = str(params.pop("rerank"))
        check_reranker_spec(second["rerank"])
    if "rerank_depth" in params:
        depth = params.pop("rerank_depth")
        if not second:
            raise TesseraError(f"'{text}': rerank_depth without rerank", field="system")
        second["rerank_depth"] = int(depth) if isinstance(depth, float) and depth.is_integer() else depth
        check_rerank_depth(second["rerank_depth"])
    if "mmr" in params or "mmr_depth" in params:
        weight, depth = params.pop("mmr", None), params.pop("mmr_depth", None)
        whole = int(depth) if isinstance(depth, float) and depth.is_integer() else depth
        try:
            second["mmr"] = as_mmr(weight, whole)
        except TesseraError as exc:
            raise TesseraError(f"'{text}': {exc.message}", field="system") from None
    return spec_only, tuple(params.items()), second


def _parse_fusion(name: str, spec: str, text: str) -> System:
    """`rrf:A+B[+...]` or `wsum:A[^W]+B[^W][+...]` (weights all given or none)."""
    method, _, rest = spec.partition(":")
    parts = [part for part in rest.split("+") if part]
    if len(parts) < 2:
        raise TesseraError(f"'{text}': a fusion names at least two systems ({method}:A+B)", field="system")
    names, weights = [], []
    for part in parts:
        part_name, caret, weight = part.rpartition("^") if "^" in part else (part, "", "")
        if caret and method != "wsum":
            raise TesseraError(f"'{text}': only wsum takes weights (wsum:A^0.3+B^0.7)", field="system")
        if caret:
            try:
                weights.append(float(weight))
            except ValueError:
                raise TesseraError(f"'{text}': weight '{weight}' is no number", field="system") from None
        names.append(part_name)
    if weights and len(weights) != len(names):
        raise TesseraError(f"'{text}': give every part a weight or none", field="system")
    if weights:
        check_weights(weights, len(names))
    return System(name, spec, fuse=tuple(names), fusion=method, weights=tuple(weights) or None)


def _check_encoder(encoder: str, text: str) -> None:
    """Malformed or unknown encoder specs fail now, not after an hour of other systems: a bare
    word must be a bundled name, a spec with a prefix (bm25:, m2:, ...) must parse, and anything
    else must be an existing folder or a hub `org/name`."""
    canonical_spec(encoder)  # raises EncoderError for a malformed prefixed spec
    base = split_runtime(encoder)[0]
    if (
        canonical_spec(base) == base
        and base not in BUNDLED
        and not is_lexical(base)
        and not re.search(r"[:/]", base)
    ):
        why = f"'{text}': '{encoder}' is no encoder (a bundled name, bm25, a folder, org/name, or prefix:...)"
        raise TesseraError(why, field="system")


def parse_systems(texts: Sequence[str | System]) -> list[System]:
    """Parse and cross-check: unique names and file names, fusions of defined non-fusion systems."""
    texts = [texts] if isinstance(texts, str | System) else texts
    systems = [item if isinstance(item, System) else parse_system(item) for item in texts]
    if not systems:
        raise TesseraError("at least one --system is needed", field="system")
    by_name = {system.name: system for system in systems}
    if len(by_name) < len(systems):
        raise TesseraError("system names must be unique (use NAME=SPEC)", field="system")
    if len({system.slug for system in systems}) < len(systems):
        raise TesseraError("two system names map to one file name; rename one", field="system")
    for system in systems:
        for part in system.fuse:
            if part not in by_name:
                why = f"'{system.name}' fuses '{part}', which no --system defines"
                raise TesseraError(why, field="system")
            if by_name[part].fuse:
                why = f"'{system.name}' fuses the fusion '{part}'; fuse its parts"
                raise TesseraError(why, field="system")
    return systems
