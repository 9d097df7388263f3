"""One module per runtime the comparison measures (``<name>_step.py``). Each has ``make_step(model)``,
returning a :class:`Runner`: ``runner.step(frame)`` runs ONE frame (float32 [in]) and returns the
output, carrying the recurrent and conv1d state between calls as a plugin would; ``runner.reset()``
zeroes that state. The timing loop calls ``runner.step`` directly, so a runtime pays only its own
per-call cost.

To add a runtime (e.g. the real C++ RTNeural), add a module here and its name to ``RUNTIMES``.
``available()`` skips runtimes whose library is not installed (torch is optional).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from toolchain.layers import Model

#: Column order of the comparison; ``engine`` first, the others are compared with it.
RUNTIMES = ("engine", "onnxruntime", "torch", "numpy")


@dataclass
class Runner:
    step: Callable[[np.ndarray], np.ndarray]
    reset: Callable[[], None]


def layer_chain(model: Model, layer_step: Callable[[object, dict], Callable]) -> tuple[list[Callable], Callable[[], None]]:
    """Per-layer step functions of ``model`` and a ``reset`` that re-runs each layer's ``state["init"]``.

    ``layer_step(layer, state)`` returns one layer's step; a stateful layer keeps its state in ``state`` and
    puts its zeroing function under ``state["init"]``. Shared by the NumPy and torch runtimes.
    """
    states = [dict() for _ in model.layers]
    steps = [layer_step(layer, state) for layer, state in zip(model.layers, states)]

    def reset():
        for state in states:
            if "init" in state:
                state["init"]()

    reset()
    return steps, reset


def load(name: str):
    return importlib.import_module(f"bench.runtimes.{name}_step")


def available(names=RUNTIMES) -> dict[str, Callable[[Model], Runner]]:
    """Runtime name -> ``make_step``, for those whose libraries import."""
    found = {}
    for name in names:
        try:
            found[name] = load(name).make_step
        except ImportError:
            continue
    return found
