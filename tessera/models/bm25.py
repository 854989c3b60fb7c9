"""BM25's settings, with optional pseudo-relevance feedback, as one spec string.

Lucene (Anserini, through pyserini) does the analysis and the scoring; every setting here is
applied when the index is searched, so a stored spec is a default that `--param` overrides, the
way `nprobe` is for faiss. The spec round-trips through the manifest:

    bm25                                  k1=0.9, b=0.4 (pyserini's defaults; kept because the
                                          RRF hybrid with MiniLM scores best with them, while
                                          BM25 alone scored 1.03-1.10x with larger k1 and b on
                                          four collections: docs/results.md section 22), title=0.25
    bm25:k1=1.2,b=0.75                    other BM25 parameters
    bm25:title=0.5                        a match in the document's title field adds 0.5 times
                                          its own BM25 score (Anserini's multi-field search; the
                                          title is also in the contents field); title=0 is
                                          pyserini's one-field search. A new index stores 0.25
                                          where the spec names no weight; a spec stored before
                                          Tessera indexed titles names none and reads as 0.
    bm25:prf=rm3                          RM3 expansion (Lavrenko and Croft 2001; Anserini's
                                          fb_terms=10, fb_docs=10, original_query_weight=0.5)
    bm25:prf=rocchio                      Rocchio expansion (Anserini's fb_terms=10, fb_docs=10,
                                          alpha=1, beta=0.75; no negative feedback)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from tessera.errors import EncoderError, finite_number

PRFS = ("rm3", "rocchio")
NO_PRF = "none"
# Each expansion's own settings beside the shared fb_terms and fb_docs (Anserini's names).
PRF_WEIGHTS = {"rm3": ("original_query_weight",), "rocchio": ("alpha", "beta")}
FEEDBACK = ("fb_terms", "fb_docs")
SCORING = ("k1", "b", "title")  # settings that apply with or without expansion
# A new index's title weight: BM25 alone 1.05x (Cranfield), 1.05x (CISI), 1.12x (LISA) nDCG@10
# against none, the RRF hybrid with MiniLM level (docs/results.md section 23).
TITLE_WEIGHT = 0.25


@dataclass(frozen=True)
class BM25:
    """Lexical scoring parameters and, when `prf` is set, query expansion from the top documents."""

    k1: float = 0.9
    b: float = 0.4
    prf: str = ""  # "", rm3 or rocchio
    fb_terms: int = 10  # expansion terms taken from the feedback documents
    fb_docs: int = 10  # top documents the expansion reads
    original_query_weight: float = 0.5  # rm3: the original query's share of the expanded one
    alpha: float = 1.0  # rocchio: the original query's weight
    beta: float = 0.75  # rocchio: the feedback documents' weight
    # Weight of a match in the title field, added to the contents (title + text) score. 0 in a
    # spec that names none, which is how specs stored before titles were indexed read; a new index
    # stores TITLE_WEIGHT unless its spec names a weight (`new_index_settings`).
    title: float = 0.0

    @property
    def spec(self) -> str:
        text = f"bm25:k1={self.k1:g},b={self.b:g},title={self.title:g}"
        if self.prf:
            names = (*FEEDBACK, *PRF_WEIGHTS[self.prf])
            text += f",prf={self.prf}," + ",".join(f"{name}={getattr(self, name):g}" for name in names)
        return text


NAMES = tuple(field.name for field in fields(BM25))


def parse_bm25(spec: str) -> BM25:
    """`bm25[:NAME=VALUE,...]` -> settings; unknown names and bad values are refused."""
    return with_settings(BM25(), _items(spec), field="encoder")


def new_index_settings(spec: str) -> BM25:
    """The settings a new index stores: the spec's, with the title weight chosen across
    collections (TITLE_WEIGHT) where the spec names none."""
    given = _items(spec)
    settings = with_settings(BM25(), given, field="encoder")
    return settings if "title" in given else replace(settings, title=TITLE_WEIGHT)


def _items(spec: str) -> dict[str, str]:
    _, _, text = spec.partition(":")
    values: dict[str, str] = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key.strip() not in NAMES:
            raise EncoderError(
                f"bad BM25 parameter '{item}' (expected NAME=VALUE with NAME one of {', '.join(NAMES)})",
                field="encoder",
            )
        values[key.strip()] = value.strip()
    return values


def with_settings(base: BM25, given: Mapping[str, object], field: str = "search_params") -> BM25:
    """`base` with the `given` settings over it (a spec's items, or search parameters).

    Choosing another `prf` drops `base`'s expansion settings; an expansion setting needs an
    expansion that has it (`alpha` belongs to rocchio, so `bm25:prf=rm3,alpha=1` is refused)."""
    unknown = sorted(set(given) - set(NAMES))
    if unknown:
        raise EncoderError(
            f"BM25 takes {', '.join(NAMES)}; not {', '.join(unknown)}",
            field=field,
        )
    prf = _prf(given["prf"], field) if "prf" in given else base.prf
    settings = base if prf == base.prf else replace(BM25(k1=base.k1, b=base.b, title=base.title), prf=prf)
    changes: dict[str, object] = {}
    for name, value in given.items():
        if name == "prf":
            continue
        if name not in (*SCORING, *((*FEEDBACK, *PRF_WEIGHTS[prf]) if prf else ())):
            needs = "prf=rm3 or prf=rocchio" if name in FEEDBACK else _owner(name)
            raise EncoderError(f"BM25 parameter '{name}' needs {needs}", field=field)
        changes[name] = _number(name, value, field)
    return replace(settings, **changes)


def _prf(value: object, field: str) -> str:
    text = str(value).strip().lower()
    if text in ("", NO_PRF):
        return ""
    if text not in PRFS:
        raise EncoderError(f"prf must be {', '.join(PRFS)} or {NO_PRF}, not '{value}'", field=field)
    return text


def _owner(name: str) -> str:
    return next(f"prf={prf}" for prf, names in PRF_WEIGHTS.items() if name in names)


def _number(name: str, value: object, field: str) -> float | int:
    number = finite_number(f"BM25 parameter '{name}'", value, field, EncoderError)
    if name in FEEDBACK:
        if number < 1 or number != int(number):
            raise EncoderError(
                f"BM25 parameter '{name}' must be a positive whole number, not {value}", field=field
            )
        return int(number)
    unit = name in ("b", "original_query_weight")  # Lucene refuses b outside [0, 1]
    if number < 0 or (unit and number > 1):
        bound = "between 0 and 1" if unit else "at least 0"
        raise EncoderError(f"BM25 parameter '{name}' must be {bound}, not {value}", field=field)
    return number
