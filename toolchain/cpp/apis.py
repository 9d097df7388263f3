"""One model through the real RTNeural's APIs: outputs for ``check``'s RTNeural column, timings for ``bench``.

The APIs, by name:

- ``dynamic``: ``RTNeural::json_parser::parseJson<float>`` -> ``RTNeural::Model<float>`` (run-time layers);
- ``compile-time``: the ``kelly-tc cpp`` header's ``ModelT`` type, weights loaded by RTNeural's
  ``ModelT::parseJson`` from the same file;
- ``embedded``: the same type with ``--embed-weights`` (weights set through RTNeural's setters).

The C++ is built once per (model, RTNeural tree, backend) into the build cache and reused. For a kelly-tc
graph file or an in_skip file only the header APIs apply (``dynamic`` is dropped, with a log line):
RTNeural's dynamic parser returns no model for a graph file and runs an in_skip file without its skip.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

import logging

from toolchain.cpp.build import harness_binary
from toolchain.cpp.runner import run_program, time_program
from toolchain.cpp.static_program import StaticModel, StaticProgram, build_static_program
from toolchain.errors import InputError
from toolchain.graph_json import output_form, read_model
from toolchain.layers import Model

log = logging.getLogger(__name__)

APIS = ("dynamic", "compile-time", "embedded")
DEFAULT_APIS = ("dynamic", "compile-time")


@dataclass(frozen=True)
class FrameTiming:
    """Time of a block of ``block`` ``forward()`` calls (one frame each; ``block`` 1: per frame), measured
    in C++ with ``std::chrono::steady_clock``. ``frames``: blocks timed in the steady state; ``first_ns``:
    the first blocks after loading, timed apart (cold caches)."""

    api: str
    frames: int
    p50_ns: float
    p99_ns: float
    mean_ns: float
    min_ns: float
    block: int = 1
    p999_ns: float = 0.0
    max_ns: float = 0.0
    first_ns: tuple[float, ...] = ()


def _check_apis(apis: Sequence[str]) -> None:
    unknown = [a for a in apis if a not in APIS]
    if unknown or not apis:
        raise InputError(f"unknown RTNeural API(s) {unknown or list(apis)}; known: {APIS}", where="apis")


def applicable_apis(model: Model, apis: Sequence[str]) -> list[str]:
    """``apis`` without ``dynamic`` when RTNeural's dynamic parser cannot run the model's file form
    (then ``compile-time`` if nothing is left)."""
    form = output_form(model)
    if form == "sequential" or "dynamic" not in apis:
        return list(apis)
    reason = "returns no model for a kelly-tc graph file" if form == "graph" else "would run an in_skip file without its skip"
    log.info("RTNeural's dynamic API left out: its parser %s; the kelly-tc header runs it", reason)
    return [api for api in apis if api != "dynamic"] or ["compile-time"]


def _static_program(json_path: Path, model: Model, apis: Sequence[str], src, backend: str) -> StaticProgram | None:
    """One program holding the compile-time variants asked for (None if only ``dynamic`` is)."""
    entries = [StaticModel(api, model, json_path, embed_weights=(api == "embedded")) for api in apis if api != "dynamic"]
    return build_static_program(entries, src=src, backend=backend) if entries else None


def rtneural_check(json_path: str | Path, frames: np.ndarray, src: str | Path | None = None,
                   apis: Sequence[str] = DEFAULT_APIS, backend: str = "stl", reset_every: int | None = None) -> dict[str, np.ndarray]:
    """Outputs [T, out] (float32) of the real RTNeural on ``frames`` [T, in], per API in ``apis``.

    Each API resets the model once and streams the frames with state, as a plugin does (and resets
    again every ``reset_every`` frames if given: a fixed-length ONNX export is compared chunk by
    chunk). ``src`` is the user's RTNeural checkout (default: ``RTNEURAL_SRC``).
    """
    _check_apis(apis)
    json_path = Path(json_path)
    model = read_model(json_path).validate()
    apis = applicable_apis(model, apis)
    program = _static_program(json_path, model, apis, src, backend)
    reset = ["--reset-every", str(int(reset_every))] if reset_every else []
    outputs = {}
    for api in apis:
        if api == "dynamic":
            values = run_program(harness_binary(src, backend), ["--json", json_path, *reset], frames, file=json_path)
        else:
            values = program.run(api, frames, reset)
        outputs[api] = values.astype(np.float32)
    return outputs


def time_rtneural(json_path: str | Path, frames: np.ndarray, src: str | Path | None = None,
                  apis: Sequence[str] = DEFAULT_APIS, backend: str = "stl", repeats: int = 5,
                  block: int = 1) -> dict[str, FrameTiming]:
    """Per-block timing (``block`` forward() calls per block) of each API on ``frames`` (``repeats`` passes,
    model reset before each, after one pass timed apart as the first calls)."""
    _check_apis(apis)
    json_path = Path(json_path)
    model = read_model(json_path).validate()
    apis = applicable_apis(model, apis)
    program = _static_program(json_path, model, apis, src, backend)
    timings = {}
    for api in apis:
        if api == "dynamic":
            result = time_program(harness_binary(src, backend), ["--json", json_path], frames, repeats, file=json_path,
                                  block=block)
        else:
            result = program.time(api, frames, repeats, block)
        timings[api] = FrameTiming(api, int(result["frames"]), result["p50_ns"], result["p99_ns"], result["mean_ns"],
                                   result["min_ns"], int(result["block"]), result["p999_ns"], result["max_ns"],
                                   tuple(result["first_ns"]))
    return timings
