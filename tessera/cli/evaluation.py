"""`tessera eval`: score one index, or several fused, on judged queries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from tessera.cli.app import (
    FilterOption,
    FusionOption,
    MmrDepthOption,
    MmrOption,
    RemoveQueryOption,
    RerankDepthOption,
    RerankOption,
    WeightsOption,
    app,
    metric_names,
    out,
    parse_weights,
)
from tessera.errors import TesseraError
from tessera.retrieval.params import parse_params

EvalSplit = Annotated[
    str, typer.Option(help="Qrels split of a BEIR folder (or ID/SPLIT); foldIofK-test for cross-validation.")
]


@app.command(name="eval")
def eval_(
    index_dirs: Annotated[list[Path], typer.Argument(help="One or more index directories (fused).")],
    dataset: Annotated[str, typer.Option(help="ir_datasets id or BEIR folder.")],
    split: EvalSplit = "test",
    metrics: Annotated[list[str], typer.Option(help="ir_measures metrics.")] = [],  # noqa: B006
    fusion: FusionOption = "rrf",
    weights: WeightsOption = None,
    depth: Annotated[int, typer.Option(help="Hits retrieved per query and index.")] = 1000,
    run: Annotated[Path | None, typer.Option(help="Write the (fused) TREC run here.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write metrics as JSON here.")] = None,
    param: Annotated[
        list[str],
        typer.Option(
            help="Search parameter, e.g. mode=xtr, k_prime=1000, prf=rocchio (BM25); "
            "each goes to the indexes of its kind."
        ),
    ] = [],  # noqa: B006
    remove_query: RemoveQueryOption = False,
    rerank: RerankOption = None,
    rerank_depth: RerankDepthOption = 100,
    mmr: MmrOption = None,
    mmr_depth: MmrDepthOption = None,
    filter: FilterOption = None,
) -> None:
    """Evaluate one index, or several fused, on judged queries.

    --rerank: and reranked; --mmr: each query's first page of 10 picked by MMR; --filter: on the
    sub-collection whose metadata match, judgments of other documents dropped."""
    from tessera.eval.evaluate import DEFAULT_METRICS, evaluate
    from tessera.retrieval.diversify import as_mmr

    diversity = as_mmr(mmr, mmr_depth)

    names = metric_names(metrics) or list(DEFAULT_METRICS)
    result = evaluate(
        index_dirs,
        dataset,
        split=split,
        metrics=names,
        fusion=fusion,
        weights=parse_weights(weights),
        depth=depth,
        run_path=run,
        json_path=json_path,
        search_params=parse_params(param),
        remove_query=remove_query,
        rerank=rerank,
        rerank_depth=rerank_depth,
        mmr=diversity,
        filter=filter,
    )
    table = Table(title=f"{result.dataset} ({len(index_dirs)} index{'es' if len(index_dirs) > 1 else ''})")
    table.add_column("system")
    for name in names:
        table.add_column(name, justify="right")
    final = f"{fusion} fusion" if len(index_dirs) > 1 else str(index_dirs[0])
    final += (f", reranked by {rerank}" if rerank else "") + (f", MMR {mmr:g}" if diversity else "")
    for system, values in [*result.inputs.items(), (final, result.metrics)]:
        table.add_row(system, *(f"{values[name]:.4f}" for name in names))
    out.print(table)


@app.command(name="eval-runs")
def eval_runs(
    runs: Annotated[list[Path], typer.Argument(help="TREC run files; the first is the baseline.")],
    dataset: Annotated[str, typer.Option(help="ir_datasets id, BEIR folder, or a TREC or BEIR qrels file.")],
    split: EvalSplit = "test",
    metrics: Annotated[list[str], typer.Option(help="ir_measures metrics.")] = [],  # noqa: B006
    fusion: Annotated[
        str | None, typer.Option(help="Also fuse the runs (rrf | wsum) and score the fusion.")
    ] = None,
    weights: WeightsOption = None,
    depth: Annotated[int, typer.Option(help="With --fusion: hits taken from each run.")] = 1000,
    run: Annotated[Path | None, typer.Option(help="With --fusion: write the fused run here.")] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the comparison as JSON here.")
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level after Holm's correction.")] = 0.05,
) -> None:
    """Score TREC runs made anywhere on judged queries and test each against the first.

    Each cell is the mean over the judged queries ± its standard error; a judged query a run
    does not answer scores 0. ▲/▼: better/worse than the first run by ranx's paired t-test,
    Holm-corrected over the runs (p in the JSON, with Fisher's randomization test and every
    query's scores); the last column counts queries better, tied and worse than the first run."""
    from tessera.eval.compare import compare_runs
    from tessera.eval.evaluate import DEFAULT_METRICS

    names = metric_names(metrics) or list(DEFAULT_METRICS)
    result = compare_runs(
        runs,
        dataset,
        split=split,
        metrics=names,
        fusion=fusion,
        weights=parse_weights(weights),
        depth=depth,
        alpha=alpha,
        run_path=run,
        json_path=json_path,
    )
    table = Table(title=f"{result.dataset}: {result.queries} judged queries, baseline {result.runs[0].name}")
    table.add_column("run")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("answered", justify="right")
    table.add_column(f"{names[0]}: better/tied/worse", justify="right")
    for row in result.runs:
        cells = []
        for name in names:
            test = result.significance[name]["t-test"].get(row.name)
            mark = "" if not test or not test["significant"] else (" ▲" if test["delta"] > 0 else " ▼")
            cells.append(f"{row.means[name]:.4f}±{row.errors[name]:.4f}{mark}")
        counts = result.against_baseline(row, names[0])
        versus = "" if row is result.runs[0] else f"{counts['better']}/{counts['tied']}/{counts['worse']}"
        table.add_row(row.name, *cells, f"{row.answered}/{result.queries}", versus)
    out.print(table)


@app.command(name="eval-suite")
def eval_suite(
    suite: Annotated[str, typer.Argument(help="classic | beir | msmarco-passage | folders:PATH,PATH,...")],
    system: Annotated[
        list[str],
        typer.Option(
            help="[NAME=]SPEC, repeatable; the first is the significance baseline. SPEC: an --encoder "
            "spec (optionally SPEC@FACTORY, e.g. minilm@OPQ48,PQ48), index:PATH ({collection} "
            "replaced), or rrf:A+B / wsum:A+B (wsum:A^0.3+B^0.7) fusing other systems by name; "
            "SPEC?NAME=VALUE[&...] adds search parameters (bm25?prf=rocchio, minilm?prf_depth=5) "
            "or a second stage (bm25?rerank=minilm, rrf:A+B?rerank=qlm&rerank_depth=20)."
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Report directory (created; resumed).")],
    metrics: Annotated[
        list[str], typer.Option(help="ir_measures metrics (default: nDCG@10 R@100 RR@10, or the suite's).")
    ] = [],  # noqa: B006
    max_docs: Annotated[
        int | None, typer.Option(help="Sample each corpus to N documents (judged first): smoke runs.")
    ] = None,
    depth: Annotated[int, typer.Option(help="Hits retrieved per query.")] = 1000,
    alpha: Annotated[float, typer.Option(help="Significance level after Holm's correction.")] = 0.05,
) -> None:
    """Evaluate systems over a suite of datasets into a report with significance tests and plots."""
    import shlex
    import sys

    from tessera.eval.report import metric_table
    from tessera.eval.suite import run_suite

    names = metric_names(metrics)
    results = run_suite(
        suite,
        system,
        output,
        metrics=names or None,
        max_docs=max_docs,
        depth=depth,
        alpha=alpha,
        command=shlex.join(["tessera", *sys.argv[1:]]),
        log=out.print,
    )
    if results["results"]:
        first = results["metrics"][0]
        sampled = f" (SAMPLED: at most {max_docs} documents per corpus)" if max_docs else ""
        table = Table(title=f"{suite}: {first}{sampled}")
        table.add_column("dataset")
        for name in results["systems"]:
            table.add_column(name, justify="right")
        for row, values in metric_table(results, first)[0].items():
            table.add_row(row, *(f"{values[s]:.4f}" if s in values else "–" for s in results["systems"]))
        out.print(table)
    for dataset, info in results["datasets"].items():
        if info.get("missing"):
            out.print(Text("not available", style="yellow") + Text(f": {dataset}: {info['missing']}"))
    report = Path(output) / "report.md"
    if not results["results"]:  # a script must not read a suite that ran nothing as a success
        raise TesseraError(f"no (dataset, system) pair of the suite could be run here; see {report}")
    out.print(f"report written to {report}")
