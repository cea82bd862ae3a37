"""Counting kept weights: ``kept_count(fraction, n)`` is round_half_up(fraction * n) computed
exactly on the decimal value of the fraction, so that decimal exact halves round up even where the
floating-point product falls just below the half."""
from __future__ import annotations

import math
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from subnetbench.methods.layers import kept_count


def test_the_documented_example_keeps_the_half():
    assert 0.58 * 25 < 14.5  # the float product is 14.499999999999998
    assert kept_count(0.58, 25) == 15
    assert [kept_count(f, n) for f, n in ((0.5, 3), (0.5, 5), (0.1, 5), (0.3, 5), (0.49, 1), (1.0, 7))] \
        == [2, 3, 1, 2, 0, 7]


@st.composite
def exact_halves(draw) -> tuple[int, int, int]:
    """(numerator, digits, n) with (numerator / 10**digits) * n exactly an integer plus one half."""
    digits = draw(st.integers(1, 4))
    scale = 10 ** digits
    numerator = draw(st.integers(1, scale))
    n = draw(st.integers(1, 100_000))
    # the first n' >= n for which numerator * n' / scale ends in exactly .5 (skip if none)
    for candidate in range(n, n + 2 * scale + 1):
        if (2 * numerator * candidate) % (2 * scale) == scale:
            return numerator, digits, candidate
    return draw(st.nothing())


@settings(max_examples=500, deadline=None, derandomize=True)
@given(exact_halves())
def test_decimal_exact_halves_always_round_up(case):
    numerator, digits, n = case
    fraction = float(Decimal(numerator) / Decimal(10 ** digits))
    expected = (2 * numerator * n + 10 ** digits) // (2 * 10 ** digits)  # floor(x + 1/2), integers
    assert kept_count(fraction, n) == expected


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.integers(0, 10_000), st.integers(1, 4), st.integers(1, 100_000))
def test_away_from_halves_it_is_the_nearest_integer(numerator, digits, n):
    scale = 10 ** digits
    numerator = min(numerator, scale)
    fraction = float(Decimal(numerator) / Decimal(scale))
    exact = Decimal(numerator) * n / scale
    assert kept_count(fraction, n) == math.floor(exact + Decimal("0.5"))
    assert 0 <= kept_count(fraction, n) <= n


def test_the_float_product_falls_below_the_half_in_cases_the_rule_fixes():
    """Not vacuous: among the exact halves of 2-digit fractions with n <= 200, the plain float
    product rounds down in some cases; kept_count rounds all of them up."""
    wrong = [(k, n) for k in range(1, 100) for n in range(1, 201)
             if (2 * k * n) % 200 == 100 and math.floor(k / 100 * n + 0.5) != (2 * k * n + 100) // 200]
    assert len(wrong) > 10
    assert all(kept_count(k / 100, n) == (2 * k * n + 100) // 200 for k, n in wrong)
