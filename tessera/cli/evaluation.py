"""`tessera eval`: score one index, or several fused, on judged queries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tessera.cli.app import app, out, parse_params


@app.command(name="eval")
def eval_(
    index_dirs: Annotated[list[Path], typer.Argument(help="One or more index directories (fused).")],
    dataset: Annotated[str, typer.Option(help="ir_datasets id or BEIR folder.")],
    split: Annotated[str, typer.Option(help="Qrels split of a BEIR folder (or ID/SPLIT).")] = "test",
    metrics: Annotated[list[str], typer.Option(help="ir_measures metrics.")] = [],  # noqa: B006
    fusion: Annotated[str, typer.Option(help="How several indexes are fused.")] = "rrf",
    depth: Annotated[int, typer.Option(help="Hits retrieved per query and index.")] = 1000,
    run: Annotated[Path | None, typer.Option(help="Write the (fused) TREC run here.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write metrics as JSON here.")] = None,
    param: Annotated[
        list[str], typer.Option(help="Search parameter for every index, e.g. mode=xtr, k_prime=1000.")
    ] = [],  # noqa: B006
) -> None:
    """Evaluate one index, or several fused, on judged queries."""
    from tessera.eval.evaluate import DEFAULT_METRICS, evaluate

    names = [m for item in metrics for m in item.replace(",", " ").split()] or list(DEFAULT_METRICS)
    result = evaluate(
        index_dirs,
        dataset,
        split=split,
        metrics=names,
        fusion=fusion,
        depth=depth,
        run_path=run,
        json_path=json_path,
        search_params=parse_params(param),
    )
    table = Table(title=f"{result.dataset} ({len(index_dirs)} index{'es' if len(index_dirs) > 1 else ''})")
    table.add_column("system")
    for name in names:
        table.add_column(name, justify="right")
    for system, values in [
        *result.inputs.items(),
        (f"{fusion} fusion" if result.inputs else str(index_dirs[0]), result.metrics),
    ]:
        table.add_row(system, *(f"{values[name]:.4f}" for name in names))
    out.print(table)
