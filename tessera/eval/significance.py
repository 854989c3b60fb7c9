"""Paired significance of each system against the baseline, corrected for the number of tests.

The tests are ranx's two-sided paired Student t-test and Fisher's randomization test as ranx
defines it (exact up to 16 queries, else 1,000 seeded permutations, so a re-run gives the same
p-values), on per-query scores aligned by query id; the correction is Holm's step-down over
every (dataset, system) comparison of one metric and one test, so a suite of many datasets does
not mark chance differences.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

PerQuery = dict[str, dict[str, dict[str, dict[str, float]]]]  # dataset -> system -> metric -> qid -> value
TESTS = ("t-test", "fisher")
N_PERMUTATIONS = 1000
SEED = 42
EXACT_UP_TO = 16  # queries: 2^16 swaps are counted exactly in well under a second


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and its standard error (sample standard deviation / sqrt n; 0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    variance = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(variance / n)


def fisher_randomization(baseline: np.ndarray, system: np.ndarray, exact_up_to: int = EXACT_UP_TO) -> float:
    """Fisher's randomization test as ranx defines it: each query's two scores swapped at random,
    p = the share of swaps whose |mean difference| reaches the observed one. Up to `exact_up_to`
    queries every one of the 2^n swaps is counted (the exact test); beyond, 1,000 draws from a
    seeded generator (ranx's own draws run in parallel threads and differ run to run), with
    (hits + 1) / (draws + 1) so that a p-value is never an impossible 0."""
    difference = system - baseline
    observed = abs(difference.mean()) - 1e-12  # float noise must not turn a tie into a miss
    if difference.size <= exact_up_to:
        signs = 1.0 - 2.0 * ((np.arange(2**difference.size)[:, None] >> np.arange(difference.size)) & 1)
        return float((np.abs(signs @ difference) / difference.size >= observed).mean())
    signs = np.random.default_rng(SEED).choice([-1.0, 1.0], size=(N_PERMUTATIONS, difference.size))
    hits = int((np.abs(signs @ difference) / difference.size >= observed).sum())
    return (hits + 1) / (N_PERMUTATIONS + 1)


def paired_p_value(test: str, baseline: np.ndarray, system: np.ndarray) -> float:
    """Two-sided p-value of `test` on paired scores (1.0 where the scores never differ)."""
    if np.array_equal(baseline, system):
        return 1.0
    from ranx.statistical_tests import paired_student_t_test

    if test == "t-test":
        p_value, _ = paired_student_t_test(baseline, system, 1.0)
    elif test == "fisher":
        p_value = fisher_randomization(baseline, system)
    else:
        raise ValueError(f"unknown test {test!r}")
    return 1.0 if math.isnan(p_value) else float(p_value)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order (monotone, capped at 1)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - position) * p_values[index]))
        adjusted[index] = running
    return adjusted


def aligned(scores: dict[str, float], query_ids: Sequence[str]) -> np.ndarray:
    """Scores in `query_ids` order; a query a system has no score for counts as 0."""
    return np.array([scores.get(qid, 0.0) for qid in query_ids], dtype=np.float64)


def compare_to_baseline(
    per_query: PerQuery, baseline: str, metrics: Sequence[str], alpha: float = 0.05
) -> dict[str, dict[str, dict[str, dict[str, dict[str, float | bool]]]]]:
    """{metric: {test: {dataset: {system: {p, p_holm, significant, delta}}}}} for every system
    with per-query scores beside the baseline's on a dataset."""
    result: dict = {}
    for metric in metrics:
        cases = []
        for dataset, systems in per_query.items():
            if metric not in systems.get(baseline, {}):
                continue
            reference = systems[baseline][metric]
            query_ids = sorted(reference)
            base = aligned(reference, query_ids)
            for system, values in systems.items():
                if system != baseline and metric in values:
                    cases.append((dataset, system, base, aligned(values[metric], query_ids)))
        for test in TESTS:
            raw = [paired_p_value(test, base, other) for _, _, base, other in cases]
            table: dict = {}
            for (dataset, system, base, other), p, adjusted in zip(cases, raw, holm(raw), strict=True):
                table.setdefault(dataset, {})[system] = {
                    "p": p,
                    "p_holm": adjusted,
                    "significant": adjusted <= alpha,
                    "delta": float(other.mean() - base.mean()),
                }
            result.setdefault(metric, {})[test] = table
    return result
