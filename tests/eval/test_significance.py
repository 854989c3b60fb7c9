"""Holm's correction and the randomization test against exact values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tessera.eval.significance import compare_to_baseline, fisher_randomization, holm, paired_p_value


def test_holm_by_hand() -> None:
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1 -> kept monotone at 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_randomization_exact_and_sampled() -> None:
    rng = np.random.default_rng(3)
    baseline = rng.random(12)
    system = baseline + rng.normal(0.08, 0.15, 12)
    difference = system - baseline
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=12)))
    exact = float((np.abs((signs * difference).mean(axis=1)) >= abs(difference.mean()) - 1e-12).mean())
    assert fisher_randomization(baseline, system) == pytest.approx(exact, abs=1e-12)  # 12 <= 16: every swap
    sampled = fisher_randomization(baseline, system, exact_up_to=0)  # 1,000 seeded draws
    assert sampled == pytest.approx(exact, abs=4 * (exact * (1 - exact) / 1000) ** 0.5 + 1 / 1001)
    assert sampled == fisher_randomization(baseline, system, exact_up_to=0)  # seeded
    always_better = baseline + 0.1
    assert fisher_randomization(baseline, always_better, exact_up_to=0) == pytest.approx(1 / 1001)  # never 0
    assert fisher_randomization(baseline, always_better) == pytest.approx(2 / 2**12)
    assert paired_p_value("fisher", baseline, baseline) == 1.0


def test_compare_aligns_queries_and_counts_absent_ones_as_zero() -> None:
    per_query = {
        "d1": {
            "base": {"m": {"q1": 0.1, "q2": 0.2, "q3": 0.3, "q4": 0.2}},
            "same": {"m": {"q4": 0.2, "q3": 0.3, "q2": 0.2, "q1": 0.1}},  # order does not matter
            "worse": {"m": {"q1": 0.0, "q2": 0.1}},  # q3, q4 absent: 0
        }
    }
    result = compare_to_baseline(per_query, "base", ["m"])
    assert result["m"]["t-test"]["d1"]["same"]["p"] == 1.0
    assert result["m"]["t-test"]["d1"]["worse"]["delta"] == pytest.approx(-0.175)
    assert set(result["m"]) == {"t-test", "fisher"}
