"""The models the runtime comparison measures, all with seeded random weights.

- one per layer kind: dense 128->64, LSTM 64->64, GRU 64->64, conv1d 16ch k3 d2;
- the five Kelly model shapes, read from the Kelly spec (``toolchain/kelly/spec.py``) when present,
  else the stacks issue 3 lists.
"""
from __future__ import annotations

import numpy as np

from reference_engine import synthetic
from reference_engine.synthetic import build_stack, kelly_stacks  # noqa: F401  (shared with the soak run)
from toolchain.layers import Model


def layer_models(rng: np.random.Generator) -> dict[str, Model]:
    return {
        "dense 128->64": synthetic.model(128, [synthetic.dense(rng, 128, 64)]),
        "lstm 64": synthetic.model(64, [synthetic.lstm(rng, 64, 64)]),
        "gru 64": synthetic.model(64, [synthetic.gru(rng, 64, 64)]),
        "conv1d 16ch k3 d2": synthetic.model(16, [synthetic.conv1d(rng, 16, 16, 3, 2)]),
    }


def benchmark_models(seed: int = 0, quick: bool = False) -> tuple[dict[str, Model], list[str], str]:
    """(name -> model in table order, the Kelly names among them, where the Kelly shapes came from).

    ``quick`` keeps the four layer-kind models and two small Kelly shapes (enough for a pipeline row).
    """
    rng = np.random.default_rng(seed)
    models = layer_models(rng)
    stacks, source = kelly_stacks()
    kelly = [name for name in stacks if not quick or name in ("DynamicsEngine", "GroovePredictor")]
    for name in kelly:
        input_size, layers = stacks[name]
        models[name] = build_stack(rng, input_size, layers)
    return models, kelly, source
