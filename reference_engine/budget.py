"""Real-time budgets: the units (``10ms``, ``500us``, ``4MB``, ``512KB``) and the verdict.

This is the ONE place budget units are parsed; everything that takes a budget imports from here.

- Durations: ``ns``, ``us`` (or ``µs``), ``ms``, ``s``; a number without a unit is refused (is ``10``
  seconds or milliseconds?).
- Sizes: ``B``, ``KB``, ``MB``, ``GB`` are powers of 1024 (as memory is sized; ``KiB``, ``MiB``, ``GiB``
  are accepted as synonyms).
- The latency verdict compares one statistic of the per-call distribution (p99 unless told otherwise:
  the tail, not the mean) with the budget; headroom is ``budget / statistic`` ("50x inside the budget").
  A call is a block of N frames (one frame when N is 1); at sample rate SR the block's real-time deadline
  is N / SR (:func:`block_deadline`), and the real-time factor is time taken / deadline (below 1 keeps up).
- A model file may say it runs once per audio sample, at a rate: ``kelly_tc.sample_rate`` (kelly-tc's
  metadata block) or ``metadata.samplerate`` (AIDA-X files) -- :func:`declared_sample_rate`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from toolchain.errors import InputError

DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
SIZE_UNITS = {"b": 1, "kb": 1 << 10, "kib": 1 << 10, "mb": 1 << 20, "mib": 1 << 20, "gb": 1 << 30, "gib": 1 << 30}
STATISTICS = ("p50", "p99", "p99.9", "max")
#: The largest memory budget accepted (2**60 bytes): larger is no budget, and 1e999GB is infinity.
MAX_SIZE = 1 << 60
#: The block size ``bench`` uses for a model that says it runs per sample (a common plugin buffer).
PER_SAMPLE_BLOCK = 64
#: Where a model file can declare its sample rate: (path of keys, how the report names it).
SAMPLE_RATE_KEYS = ((("kelly_tc", "sample_rate"), "kelly_tc.sample_rate"), (("metadata", "samplerate"), "metadata.samplerate"))

_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Zµ]*)\s*$")


def _split(text: str, option: str) -> tuple[float, str]:
    match = _QUANTITY.match(str(text))
    if not match:
        raise InputError(f"cannot read {text!r} as a number with a unit", where=option)
    return float(match.group(1)), match.group(2)


def parse_duration(text: str, option: str = "--budget") -> float:
    """``"10ms"`` -> 0.01 (seconds). Raises :class:`InputError` naming ``option``."""
    value, unit = _split(text, option)
    if unit not in DURATION_UNITS:
        hint = "add a unit, e.g. 10ms" if not unit else f"unknown unit {unit!r}"
        raise InputError(f"{hint}; durations take {', '.join(DURATION_UNITS)}", where=option)
    seconds = value * DURATION_UNITS[unit]
    if not math.isfinite(seconds) or value <= 0:  # "1e400ms" parses as inf: no budget at all
        raise InputError(f"{text!r} must be positive and finite", where=option)
    return seconds


def parse_size(text: str, option: str = "--memory-budget") -> int:
    """``"4MB"`` -> 4194304 (bytes, powers of 1024). Raises :class:`InputError` naming ``option``."""
    value, unit = _split(text, option)
    if unit.lower() not in SIZE_UNITS:
        hint = "add a unit, e.g. 4MB" if not unit else f"unknown unit {unit!r}"
        raise InputError(f"{hint}; sizes take B, KB, MB, GB (powers of 1024)", where=option)
    size = value * SIZE_UNITS[unit.lower()]
    if not math.isfinite(size) or value <= 0 or size > MAX_SIZE:  # int(round(inf)) raised OverflowError
        raise InputError(f"{text!r} must be positive and at most {MAX_SIZE >> 50} PB", where=option)
    return int(round(size))


def format_duration(seconds: float) -> str:
    """A readable duration: ``12.3 us``, ``4.56 ms``."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_size(size: float) -> str:
    """A readable size in powers of 1024: ``4.4 MB``, ``12 KB``."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if abs(size) >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{int(size)} B"


@dataclass(frozen=True)
class Budget:
    """Per-frame latency budget (seconds) on ``statistic``, and resident-memory budget (bytes); ``None`` = unchecked."""

    latency: float | None = None
    memory: int | None = None
    statistic: str = "p99"

    @classmethod
    def parse(cls, latency: str | None, memory: str | None, statistic: str = "p99") -> "Budget":
        if statistic not in STATISTICS:
            raise InputError(f"{statistic!r} is not one of {', '.join(STATISTICS)}", where="--statistic")
        return cls(parse_duration(latency) if latency else None,
                   parse_size(memory) if memory else None, statistic)

    def violations(self, name: str, latency_seconds: dict[str, float], memory_bytes: int) -> list[str]:
        """One message per budget that ``name`` exceeds, saying by how much."""
        messages = []
        measured = latency_seconds[self.statistic]
        if self.latency is not None and measured > self.latency:
            messages.append(f"{name}: {self.statistic} latency {format_duration(measured)} is over the "
                            f"{format_duration(self.latency)} budget by {format_duration(measured - self.latency)} "
                            f"({measured / self.latency - 1:.0%})")
        if self.memory is not None and memory_bytes > self.memory:
            messages.append(f"{name}: memory {format_size(memory_bytes)} is over the {format_size(self.memory)} "
                            f"budget by {format_size(memory_bytes - self.memory)} ({memory_bytes / self.memory - 1:.0%})")
        return messages

    def headroom(self, latency_seconds: dict[str, float]) -> float | None:
        """How many times the measured statistic fits in the latency budget (``None`` without a budget)."""
        if self.latency is None:
            return None
        return self.latency / max(latency_seconds[self.statistic], 1e-12)

    def as_dict(self) -> dict:
        return {"latency_seconds": self.latency, "memory_bytes": self.memory, "statistic": self.statistic}


def block_deadline(block: int, sample_rate: float) -> float:
    """Seconds a block of ``block`` frames lasts at ``sample_rate`` frames per second: its real-time deadline."""
    return block / sample_rate


def parse_sample_rate(text: str, option: str = "--sample-rate") -> float:
    """``"48000"``, ``"48000Hz"`` or ``"48kHz"`` -> 48000.0 (frames per second)."""
    value, unit = _split(text, option)
    scale = {"": 1.0, "hz": 1.0, "khz": 1e3}.get(unit.lower())
    if scale is None:
        raise InputError(f"unknown unit {unit!r}; a sample rate is in Hz (48000, 48kHz)", where=option)
    rate = value * scale
    if not math.isfinite(rate) or value <= 0:
        raise InputError(f"{text!r} must be positive and finite", where=option)
    return rate


def declared_sample_rate(metadata: dict) -> tuple[float, str] | None:
    """(rate in Hz, the key that declared it) when a model file's top-level metadata says it runs per sample;
    ``None`` when it does not. A declared rate that is not a positive number is refused, naming the key."""
    import math

    for path, name in SAMPLE_RATE_KEYS:
        value = metadata
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise InputError(f"a sample rate must be a positive number of Hz, got {value!r}", where=name)
        return float(value), name
    return None
