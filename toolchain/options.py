"""Numeric command-line options, validated at the edge (issue 17, point 5).

typer turns ``--frames 100000000000`` into an int and ``--atol nan`` into a float; nothing stops either
from reaching NumPy (a MemoryError, a check that can never pass). Every command passes its numbers
through these before doing any work; each refusal is one ``InputError`` naming the option.
"""
from __future__ import annotations

import math

from toolchain.errors import InputError

#: NumPy's seeds are 0..2**32-1 for the legacy API and any non-negative int for default_rng; one range
#: for every command keeps a seed valid wherever it is passed on (torch, numpy, the C++ harness).
MAX_SEED = 2**32 - 1
#: Random check frames: [frames, features] float32 plus the ONNX outputs -- 10**7 frames of a
#: 64-feature model is 2.5 GB, the most a check should ever allocate.
MAX_CHECK_FRAMES = 10_000_000


def integer(value: int, option: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise InputError(f"must be between {low} and {high}, got {value}", where=option)
    return value


def seed(value: int, option: str = "--seed") -> int:
    return integer(value, option, 0, MAX_SEED)


def real(value: float, option: str, low: float, high: float = math.inf, *, low_open: bool = False,
         high_open: bool = False) -> float:
    """A finite float in [low, high] (ends excluded where ``*_open``)."""
    if not math.isfinite(value):
        raise InputError(f"must be a finite number, got {value}", where=option)
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (above and below):
        left, right = "(" if low_open else "[", ")" if high_open or math.isinf(high) else "]"
        raise InputError(f"must be in {left}{low:g}, {high:g}{right}, got {value:g}", where=option)
    return value


def atol(value: float, option: str = "--atol") -> float:
    """An absolute tolerance: finite and >= 0 (NaN would make every comparison fail silently)."""
    return real(value, option, 0.0)
