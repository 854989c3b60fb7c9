"""report.md and the plots of a suite, written from the results dictionary alone (results.json),
so a report can be re-drawn from a saved run without touching an index."""

from __future__ import annotations

from pathlib import Path

from tessera.durable import write_text_atomic
from tessera.eval import plots
from tessera.eval.significance import mean_se

MARKS = {"t-test": "†", "fisher": "‡"}


def table_rows(results: dict) -> dict[str, list[str]]:
    """Report rows in suite order -> the datasets each stands for (a group's members share one
    row: CQADupStack is the mean of its forums)."""
    rows: dict[str, list[str]] = {}
    for dataset, info in results["datasets"].items():
        if info.get("missing"):
            continue
        group = info.get("group") or ""
        rows.setdefault(group or dataset, []).append(dataset)
    return rows


def row_value(results: dict, members: list[str], system: str, metric: str) -> float | None:
    """The metric on one row: the dataset's value, or the mean over a group's members (None
    unless every member has it)."""
    values = [results["results"].get(d, {}).get(system, {}).get(metric) for d in members]
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)


def metric_table(results: dict, metric: str) -> tuple[dict[str, dict[str, float]], list[str]]:
    """({row: {system: value}}, rows every system has, i.e. the rows of the mean)."""
    systems = list(results["systems"])
    table: dict[str, dict[str, float]] = {}
    for row, members in table_rows(results).items():
        values = {s: row_value(results, members, s, metric) for s in systems}
        if any(v is not None for v in values.values()):
            table[row] = {s: v for s, v in values.items() if v is not None}
    complete = [row for row, values in table.items() if len(values) == len(systems)]
    return table, complete


def _mark(results: dict, metric: str, dataset: str, system: str) -> str:
    tests = results["significance"].get(metric, {})
    found = [(test, tests[test].get(dataset, {}).get(system)) for test in MARKS]
    hits = [(test, entry) for test, entry in found if entry and entry["significant"]]
    if not hits:
        return ""
    arrow = "▲" if hits[0][1]["delta"] > 0 else "▼"
    return f" {arrow}{''.join(MARKS[test] for test, _ in hits)}"


def _cell(value: float | None, mark: str = "", error: float | None = None) -> str:
    if value is None:
        return "–"
    return f"{value:.4f}" + ("" if error is None else f" ±{error:.3f}") + mark


def _standard_error(results: dict, dataset: str, system: str, metric: str) -> float | None:
    """Standard error over the dataset's judged queries (None without per-query scores)."""
    scores = results["per_query"].get(dataset, {}).get(system, {}).get(metric)
    return mean_se(list(scores.values()))[1] if scores else None


def _metric_section(results: dict, metric: str) -> list[str]:
    systems = list(results["systems"])
    table, complete = metric_table(results, metric)
    if not table:
        return []
    rows = table_rows(results)
    lines = [
        f"## {metric}",
        "",
        "| dataset | " + " | ".join(systems) + " |",
        "|---" * (len(systems) + 1) + "|",
    ]
    for row, values in table.items():
        label = row if len(rows[row]) == 1 else f"{row} (mean of {len(rows[row])})"
        cells = [
            _cell(values.get(s), _mark(results, metric, row, s), _standard_error(results, row, s, metric))
            if len(rows[row]) == 1
            else _cell(values.get(s))
            for s in systems
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if complete:
        means = [sum(table[row][s] for row in complete) / len(complete) for s in systems]
        lines.append(f"| **mean of {len(complete)}** | " + " | ".join(f"**{m:.4f}**" for m in means) + " |")
    return [*lines, ""]


def efficiency_means(results: dict, metric: str) -> dict[str, dict[str, float]]:
    """Per system, over the rows of the mean: quality, bytes per document, ms per query."""
    table, complete = metric_table(results, metric)
    rows = table_rows(results)
    means: dict[str, dict[str, float]] = {}
    for system in results["systems"]:
        datasets = [d for row in complete for d in rows[row]]
        cost = [results["efficiency"][d][system] for d in datasets]
        if not datasets:
            continue
        means[system] = {
            "quality": sum(table[row][system] for row in complete) / len(complete),
            "bytes_per_doc": sum(c["index_bytes"] / max(1, c["doc_count"]) for c in cost) / len(cost),
            "ms_per_query": sum(c["ms_per_query"] for c in cost) / len(cost),
        }
    return means


def _efficiency_section(results: dict) -> list[str]:
    lines = [
        "## Cost",
        "",
        "Index bytes exclude the document store (the same for every system); a fusion's cost is "
        "the sum of its parts' (they run one after the other here). An index trained on another "
        "system's stored vectors (`reindex`) did not encode the corpus: its build time excludes "
        "encoding.",
        "",
        "| dataset | system | documents | index MB | bytes/doc | build s | ms/query |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset, by_system in results["efficiency"].items():
        for system, cost in by_system.items():
            build = "–" if cost["build_seconds"] is None else f"{cost['build_seconds']:.1f}"
            if cost.get("vectors_from"):
                build += f" (from {cost['vectors_from']}'s vectors)"
            per_doc = cost["index_bytes"] / max(1, cost["doc_count"])
            lines.append(
                f"| {dataset} | {system} | {cost['doc_count']} | {cost['index_bytes'] / 1e6:.2f} | "
                f"{per_doc:.0f} | {build} | {cost['ms_per_query']:.2f} |"
            )
    return [*lines, ""]


def _header(results: dict) -> list[str]:
    comparisons = {
        metric: sum(len(by_system) for by_system in tests.get("t-test", {}).values())
        for metric, tests in results["significance"].items()
    }
    count = max(comparisons.values(), default=0)
    lines = [
        f"# Evaluation suite `{results['suite']}`",
        "",
        f"Significance against the first system, `{results['baseline']}`: ▲/▼ better/worse, "
        "† two-sided paired t-test, ‡ Fisher randomization test (exact up to 16 queries, else "
        "1,000 seeded permutations), each at "
        f"p ≤ {results['alpha']} after Holm's correction over the {count} (dataset, system) "
        "comparisons of a metric. Numbers are each metric's mean over the judged queries "
        f"(ir_measures; {results['depth']} hits retrieved per query), ± its standard error over "
        "those queries; means of groups carry neither ± nor marks.",
        "",
    ]
    if results["max_docs"]:
        lines += [
            f"**SAMPLED: every corpus is cut to at most {results['max_docs']} documents (judged ones "
            "first); these numbers are for smoke runs and are not comparable to full runs.**",
            "",
        ]
    lines += ["| system | spec | kind |", "|---|---|---|"]
    lines += [f"| {name} | `{s['spec']}` | {s['kind']} |" for name, s in results["systems"].items()]
    lines += ["", "| dataset | documents | judged queries | note |", "|---|---|---|---|"]
    for dataset, info in results["datasets"].items():
        note = f"not available: {info['missing']}" if info.get("missing") else ""
        if info.get("sampled"):
            note = f"sampled: {info['sampled']}"
        lines.append(f"| {dataset} | {info.get('docs') or '–'} | {info.get('queries', '–')} | {note} |")
    return [*lines, ""]


def _plots(results: dict, root: Path) -> list[str]:
    metric = results["metrics"][0] if results["metrics"] else None
    table, complete = metric_table(results, metric) if metric else ({}, [])
    folder = root / "plots"
    if not complete:  # an earlier run's plots would show systems and numbers this report has not
        for name in plots.NAMES:
            (folder / name).unlink(missing_ok=True)
        why = "no dataset has a result of every system" if metric else "no result"
        return ["## Plots", "", f"None: {why}.", ""]
    folder.mkdir(parents=True, exist_ok=True)
    systems = list(results["systems"])
    bars = {row: table[row] for row in complete}
    bars[f"mean of {len(complete)}"] = {
        s: sum(table[r][s] for r in complete) / len(complete) for s in systems
    }
    note = f"\nSAMPLED: at most {results['max_docs']} documents a corpus" if results["max_docs"] else ""
    plots.quality_bars(bars, systems, metric, folder / plots.QUALITY, note)
    means = efficiency_means(results, metric)
    bytes_points = {s: (m["bytes_per_doc"], m["quality"]) for s, m in means.items()}
    plots.quality_against(
        bytes_points, "index bytes per document", metric, "Quality against size", folder / plots.BYTES, note
    )
    latency_points = {s: (m["ms_per_query"], m["quality"]) for s, m in means.items()}
    plots.quality_against(
        latency_points, "ms per query (whole query set, batched)", metric, "Quality against latency",
        folder / plots.LATENCY, note,
    )  # fmt: skip
    return [
        "## Plots",
        "",
        f"![{metric} per dataset](plots/{plots.QUALITY})",
        f"![{metric} against index bytes per document](plots/{plots.BYTES})",
        f"![{metric} against ms per query](plots/{plots.LATENCY})",
        "",
    ]


def render(results: dict, root: Path, with_plots: bool = True) -> str:
    lines = _header(results)
    for metric in results["metrics"]:
        lines += _metric_section(results, metric)
    lines += _efficiency_section(results)
    if with_plots:
        lines += _plots(results, root)
    if results["unavailable"]:
        lines += ["## Pairs not run", "", "| dataset | system | why |", "|---|---|---|"]
        for dataset, by_system in results["unavailable"].items():
            lines += [f"| {dataset} | {system} | {why} |" for system, why in by_system.items()]
        lines.append("")
    if results.get("command"):
        lines += ["## Reproduce", "", "```", results["command"], "```", ""]
    return "\n".join(lines)


def write_report(results: dict, root: Path, with_plots: bool = True) -> Path:
    """Write REPORT_DIR/report.md (and plots/*.png); returns the report's path."""
    path = root / "report.md"
    write_text_atomic(path, render(results, root, with_plots))
    return path
