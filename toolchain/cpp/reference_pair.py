"""The reference input/output pair a model file carries, so a host can verify the model on load.

Where it lives in an RTNeural JSON file (RTNeural's parser ignores extra top-level keys):

    {"in_shape": [...], "layers": [...],
     "kelly_tc": {"reference": {"input":  [[x_0_0, ..., x_0_in-1], ..., [x_F-1_0, ...]],
                                "output": [[y_0_0, ..., y_0_out-1], ..., [y_F-1_0, ...]]}}}

AIDA-X model files carry the same thing under their own top-level keys ``input_batch`` and
``output_batch`` (1-D for a 1-feature stream, or ``[frames][features]``; a leading batch axis of 1 is
accepted); read as the pair when the file has no kelly-tc pair.

Meaning: reset the model, then feed ``input`` frame after frame (one ``forward()`` per row, state
kept); row ``t`` of ``output`` is what the model must produce for frame ``t``. Values are float32
written as JSON numbers. The exporter writes it (``set_reference_pair``); ``kelly-tc cpp`` compiles
it into the header's ``self_test()``; validators read it with ``reference_pair``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from toolchain.errors import InputError
from toolchain.layers import Model, f32

#: Top-level key of kelly-tc's metadata in an RTNeural JSON file, and the pair's key inside it.
METADATA_KEY = "kelly_tc"
REFERENCE_KEY = "reference"
WHERE = f"{METADATA_KEY}/{REFERENCE_KEY}"


def _matrix(value: Any, where: str, columns: int) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("not a rectangular array of numbers", where=where) from None
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] != columns:
        raise InputError(f"expected [frames][{columns}] numbers, got shape {list(array.shape)}", where=where)
    if not np.all(np.isfinite(array)):
        raise InputError("contains NaN or Inf", where=where)
    return f32(array)


AIDAX_KEYS = ("input_batch", "output_batch")


def _aidax_matrix(value: Any, where: str, columns: int) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("not a rectangular array of numbers", where=where) from None
    while array.ndim == 3 and array.shape[0] == 1:  # [1, frames, features]: a batch of one
        array = array[0]
    if array.ndim == 1 and columns == 1:
        array = array[:, None]
    return _matrix(array, where, columns)


def reference_source(model: Model) -> str | None:
    """Where the model's reference pair comes from: ``kelly_tc.reference``, ``input_batch/output_batch``, or None."""
    metadata = model.metadata.get(METADATA_KEY)
    if isinstance(metadata, dict) and REFERENCE_KEY in metadata:
        return f"{METADATA_KEY}.{REFERENCE_KEY}"
    if all(key in model.metadata for key in AIDAX_KEYS):
        return "/".join(AIDAX_KEYS)
    return None


def reference_pair(model: Model) -> tuple[np.ndarray, np.ndarray] | None:
    """The model's reference (inputs [F, in], outputs [F, out]) as float32, or None if it has none."""
    metadata = model.metadata.get(METADATA_KEY)
    if not isinstance(metadata, dict) or REFERENCE_KEY not in metadata:
        if not all(key in model.metadata for key in AIDAX_KEYS):
            return None
        inputs = _aidax_matrix(model.metadata[AIDAX_KEYS[0]], AIDAX_KEYS[0], model.input_size)
        outputs = _aidax_matrix(model.metadata[AIDAX_KEYS[1]], AIDAX_KEYS[1], model.output_size)
        if inputs.shape[0] != outputs.shape[0]:
            raise InputError(f"{inputs.shape[0]} input frames but {outputs.shape[0]} output frames", where="/".join(AIDAX_KEYS))
        return inputs, outputs
    pair = metadata[REFERENCE_KEY]
    if not isinstance(pair, dict):
        raise InputError("expected an object with 'input' and 'output'", where=WHERE)
    inputs = _matrix(pair.get("input"), f"{WHERE}/input", model.input_size)
    outputs = _matrix(pair.get("output"), f"{WHERE}/output", model.output_size)
    if inputs.shape[0] != outputs.shape[0]:
        raise InputError(f"{inputs.shape[0]} input frames but {outputs.shape[0]} output frames", where=WHERE)
    return inputs, outputs


def set_reference_pair(model: Model, inputs: np.ndarray, outputs: np.ndarray) -> Model:
    """Store the pair in ``model.metadata`` (written with the model by ``rtneural_json.write_model``)."""
    pair = {"input": f32(inputs).astype(np.float64).tolist(), "output": f32(outputs).astype(np.float64).tolist()}
    metadata = dict(model.metadata.get(METADATA_KEY) or {})
    metadata[REFERENCE_KEY] = pair
    model.metadata[METADATA_KEY] = metadata
    reference_pair(model)  # validate the shapes now, not when a host loads the file
    return model
