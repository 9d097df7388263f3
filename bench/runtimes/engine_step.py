"""This project's reference engine: ``Engine.forward``, one call per frame."""
from __future__ import annotations

from bench.runtimes import Runner
from reference_engine.model import Engine
from toolchain.layers import Model


def make_step(model: Model) -> Runner:
    engine = Engine(model)
    return Runner(engine.forward, engine.reset)
