"""The suite report's plots: quality per dataset, and quality against bytes and latency."""

from __future__ import annotations

import os
from pathlib import Path

QUALITY = "quality.png"
BYTES = "quality_vs_bytes.png"
LATENCY = "quality_vs_latency.png"


NAMES = (QUALITY, BYTES, LATENCY)


def _save(figure, path: Path) -> None:
    """Whole or not at all: an interrupted report keeps the previous plot, never half a PNG."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    figure.savefig(partial, dpi=120, format="png", bbox_inches="tight")  # labels past the axes kept
    os.replace(partial, path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    return plt


def quality_bars(
    table: dict[str, dict[str, float]], systems: list[str], metric: str, path: Path, note: str = ""
) -> None:
    """Grouped bars: one group per dataset row (and the mean), one bar per system; `note` after
    the title (a sampled run says so on its plots too)."""
    plt = _pyplot()
    rows = list(table)
    width = 0.8 / max(1, len(systems))
    figure, axes = plt.subplots(figsize=(max(6.0, 1.1 * len(rows) * max(1, len(systems)) * 0.45 + 2), 4.2))
    for position, system in enumerate(systems):
        xs = [row + (position - (len(systems) - 1) / 2) * width for row in range(len(rows))]
        values = [table[name].get(system, float("nan")) for name in rows]
        axes.bar(xs, values, width, label=system)
    axes.set_xticks(range(len(rows)), rows, rotation=30, ha="right", fontsize=8)
    axes.set_ylabel(metric)
    axes.set_title(f"{metric} per dataset{note}")
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never on them
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    _save(figure, path)
    plt.close(figure)


def _two_and_five(value: float, _: int) -> str:
    """Label the 2x and 5x minor ticks of a log axis (20, 50, 200, ...), leave the rest bare."""
    return f"{value:g}" if f"{value:e}"[0] in "25" else ""


def quality_against(
    points: dict[str, tuple[float, float]], xlabel: str, metric: str, title: str, path: Path, note: str = ""
) -> None:
    """One labelled point per system: (cost, quality); cost on a log axis; `note` after the title."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4.2))
    for system, (cost, quality) in points.items():
        axes.scatter([cost], [quality], s=40)
        axes.annotate(system, (cost, quality), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if points and min(cost for cost, _ in points.values()) > 0:
        from matplotlib.ticker import FuncFormatter

        axes.set_xscale("log")
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # 100, not 10^2
        axes.xaxis.set_minor_formatter(FuncFormatter(_two_and_five))
    axes.set_xlabel(xlabel)
    axes.set_ylabel(f"mean {metric}")
    axes.set_title(f"{title}{note}")
    axes.margins(x=0.12, y=0.1)  # room for the outermost points' labels
    axes.grid(alpha=0.3)
    figure.tight_layout()
    _save(figure, path)
    plt.close(figure)
