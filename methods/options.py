"""Validation of method options: the checks every ``Options`` dataclass calls in ``__post_init__``.

A bad value raises :class:`OptionError` naming the option, the value and what is allowed. Numbers
must fit float32, in which networks, optimisers and temperatures compute (torch.finfo): beyond its
range an option overflows in the first step, and a nonzero one below its smallest normal value
becomes 0 or a subnormal (a temperature of 1e-320 divides by 0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from subnetbench.errors import OptionError  # re-exported: the plugin API's error of bad options

OPTIMIZER_ALGORITHMS = ("sgd", "adam")
FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_SMALLEST_NORMAL = 1.1754943508222875e-38
FLOAT32_RANGE = (f"a number in float32's normal range, 0 or a magnitude in "
                 f"[{FLOAT32_SMALLEST_NORMAL:.4g}, {FLOAT32_MAX:.4g}]: the networks compute in float32")
# Each sampled mask of a stochastic evaluation is one more pass over the whole test set (the
# released code averages 10): beyond this the evaluation alone outlasts any training, and a typo
# (eval_samples=1000000) would look like a hung run.
MAX_EVAL_SAMPLES = 10_000

__all__ = ["FLOAT32_MAX", "FLOAT32_RANGE", "FLOAT32_SMALLEST_NORMAL", "MAX_EVAL_SAMPLES",
           "OPTIMIZER_ALGORITHMS", "NoOptions", "OptionError", "check_eval_samples",
           "check_keep_fraction", "check_option", "float32_problem"]


def float32_problem(value: Any) -> str | None:
    """Why the number ``value`` cannot be an option of a network that computes in float32; None
    when it can, or when ``value`` is not a number (a bool, a string: for the option's own check)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "a finite number: inf and nan are refused"
    if abs(value) > FLOAT32_MAX or (value != 0 and abs(value) < FLOAT32_SMALLEST_NORMAL):
        return FLOAT32_RANGE
    return None


def check_option(condition: bool, owner: str, name: str, value: Any, allowed: str) -> None:
    """Raise :class:`OptionError` unless ``condition``; ``owner`` (e.g. ``ASLPOptions``) prefixes
    the message when given. A number outside float32's normal range is refused whatever the
    condition (:func:`float32_problem`): result files are strict JSON, and the networks float32."""
    problem = float32_problem(value)
    if not condition or problem:
        prefix = f"{owner}: " if owner else ""
        extra = f" ({problem})" if problem else ""
        raise OptionError(f"{prefix}option {name}={value!r} is not allowed; expected {allowed}{extra}")


def check_eval_samples(owner: str, value: Any) -> None:
    check_option(isinstance(value, int) and not isinstance(value, bool)
                 and 1 <= value <= MAX_EVAL_SAMPLES, owner, "eval_samples", value,
                 f"an integer in [1, {MAX_EVAL_SAMPLES}] (sampled masks, each a pass over the test "
                 "set)")


def check_keep_fraction(owner: str, value: Any) -> None:
    check_option(isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1,
                 owner, "keep_fraction", value, "a number in (0, 1] (the fraction of weights KEPT)")


@dataclass(frozen=True)
class NoOptions:
    """Options of a method that has none."""
