"""The models the runtime comparison measures, all with seeded random weights.

- one per layer kind: dense 128->64, LSTM 64->64, GRU 64->64, conv1d 16ch k3 d2;
- the per-sample models (one audio sample per frame, as guitar-amp plugins run them): an LSTM-12 + dense
  and a GRU-8 + dense (seeded random weights), and RTNeural's own ``lstm.json`` and ``gru.json`` from
  ``../shared/rtneural-testdata`` (``KELLY_TC_SHARED`` overrides the folder; left out when absent);
- the five Kelly model shapes, read from the Kelly spec (``toolchain/kelly/spec.py``) when present,
  else the stacks issue 3 lists.
"""
from __future__ import annotations

import numpy as np

import os
from pathlib import Path

from reference_engine import synthetic
from reference_engine.synthetic import build_stack, kelly_stacks  # noqa: F401  (shared with the soak run)
from toolchain.layers import Model

#: RTNeural's test models, beside the repository unless KELLY_TC_SHARED says otherwise.
TESTDATA = Path(os.environ.get("KELLY_TC_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "rtneural-testdata"


def layer_models(rng: np.random.Generator) -> dict[str, Model]:
    return {
        "dense 128->64": synthetic.model(128, [synthetic.dense(rng, 128, 64)]),
        "lstm 64": synthetic.model(64, [synthetic.lstm(rng, 64, 64)]),
        "gru 64": synthetic.model(64, [synthetic.gru(rng, 64, 64)]),
        "conv1d 16ch k3 d2": synthetic.model(16, [synthetic.conv1d(rng, 16, 16, 3, 2)]),
    }


def per_sample_models(rng: np.random.Generator, quick: bool = False) -> dict[str, Model]:
    """The per-sample models (one input sample per frame); ``quick`` keeps the LSTM-12 only."""
    from toolchain.rtneural_json import read_model

    models = {"per-sample LSTM-12 + dense": synthetic.model(1, [synthetic.lstm(rng, 1, 12), synthetic.dense(rng, 12, 1)]),
              "per-sample GRU-8 + dense": synthetic.model(1, [synthetic.gru(rng, 1, 8), synthetic.dense(rng, 8, 1)])}
    if quick:
        return {name: model for name, model in models.items() if "LSTM" in name}
    for name in ("lstm", "gru"):
        path = TESTDATA / "models" / f"{name}.json"
        if path.is_file():
            models[f"RTNeural {name}.json"] = read_model(path)
    return models


def benchmark_models(seed: int = 0, quick: bool = False) -> tuple[dict[str, Model], list[str], str]:
    """(name -> model in table order, the Kelly names among them, where the Kelly shapes came from).

    ``quick`` keeps the four layer-kind models, the per-sample LSTM-12 and two small Kelly shapes (enough for
    a pipeline row).
    """
    rng = np.random.default_rng(seed)
    models = layer_models(rng)
    models.update(per_sample_models(np.random.default_rng(seed + 1), quick))
    stacks, source = kelly_stacks()
    kelly = [name for name in stacks if not quick or name in ("DynamicsEngine", "GroovePredictor")]
    for name in kelly:
        input_size, layers = stacks[name]
        models[name] = build_stack(rng, input_size, layers)
    return models, kelly, source
