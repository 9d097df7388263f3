"""GuitarML's SimpleRNN JSON (Automated-GuitarAmpModelling, NeuralPi, Proteus) -> RTNeural JSON.

The file is ``{"model_data": {...}, "state_dict": {...}}``: ``model_data`` names the network
(``model: "SimpleRNN"``, ``unit_type: "LSTM"|"GRU"``, ``input_size`` -- 1 for audio, more when knobs are
extra input features --, ``hidden_size``, ``num_layers``, ``output_size``, ``skip``, ``bias_fl``) and
``state_dict`` holds PyTorch's tensors as nested lists: ``rec.weight_ih_l0``, ``rec.weight_hh_l0``,
``rec.bias_ih_l0``, ``rec.bias_hh_l0``, ``lin.weight``, ``lin.bias``. SimpleRNN computes
``lin(rec(x)) + x[..., :skip]``; ``skip`` 1 becomes RTNeural's ``in_skip`` (written by ``graph_json``).

The written file is then checked: the engine runs it frame by frame and is compared with a float64
evaluation of the *state_dict itself* in PyTorch's conventions (:func:`simple_rnn_float64`: gate order
i,f,g,o / r,z,n, two biases), which shares nothing with the conversion, so a gate-order or bias mistake
in it would show. No PyTorch is needed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from toolchain.errors import InputError, UnsupportedError
from toolchain.gates import GRU_CANONICAL, GRU_TORCH, LSTM_CANONICAL, LSTM_TORCH, reorder_gates
from toolchain.layers import GRU, LSTM, Dense, Model, f32

UNIT_TYPES = ("LSTM", "GRU")
#: Max abs error allowed between the engine (float32) and the float64 evaluation on the check input.
CHECK_ATOL = 1e-5
CHECK_FRAMES = 2000


def is_guitarml(document: Any) -> bool:
    return isinstance(document, dict) and "model_data" in document and "state_dict" in document


def looks_like(document: Any) -> str:
    """What a JSON document that is not an RTNeural model seems to be, for the refusal."""
    if not isinstance(document, dict):
        return f"a JSON {type(document).__name__}, not an object"
    if is_guitarml(document):
        return "a GuitarML SimpleRNN file (model_data + state_dict): convert it with kelly-tc convert FILE.json -o OUT.json"
    if "architecture" in document and "weights" in document:
        return f"a NAM file (architecture {str(document.get('architecture'))[:40]!r}): NAM models are not RTNeural files"
    if document and all(isinstance(v, list) for v in document.values()) and any("." in str(k) for k in document):
        return f"a PyTorch state dict ({len(document)} tensors such as {next(iter(document))!r}) without the model that reads it"
    if document and all(isinstance(v, dict) and ("in_shape" in v or "layers" in v) for v in document.values()):
        return f"a dictionary of {len(document)} RTNeural models (keys {', '.join(list(map(str, document))[:3])}): extract one"
    keys = ", ".join(list(map(str, document))[:6])
    return f"an unknown JSON object with keys {keys or '(none)'}"


def _tensor(state: dict, name: str, shape: tuple[int, ...]) -> np.ndarray:
    where = f"state_dict/{name}"
    if name not in state:
        raise InputError(f"missing (needed for {shape})", where=where)
    try:
        array = np.asarray(state[name], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("not a rectangular array of numbers", where=where) from None
    if array.shape != shape:
        raise InputError(f"has shape {list(array.shape)}, model_data needs {list(shape)}", where=where)
    if not np.all(np.isfinite(array)):
        raise InputError("contains NaN or Inf", where=where)
    return array


def _int(data: dict, key: str, default=None, low: int = 1) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(f"expected an integer >= {low}, got {value!r}", where=f"model_data/{key}")
    return value


def read_simple_rnn(document: dict) -> dict:
    """model_data and the state_dict tensors, validated against each other (float64)."""
    data, state = document["model_data"], document["state_dict"]
    if not isinstance(data, dict) or not isinstance(state, dict):
        raise InputError("model_data and state_dict must be objects")
    model = data.get("model", "SimpleRNN")
    if model != "SimpleRNN":
        raise UnsupportedError(f"model {model!r}: only GuitarML's SimpleRNN (a recurrent layer and a linear head) is known",
                               where="model_data/model")
    unit = data.get("unit_type")
    if unit not in UNIT_TYPES:
        raise UnsupportedError(f"unit_type {unit!r}: RTNeural's recurrent layers are {' and '.join(UNIT_TYPES)} "
                               "(a plain RNN has no RTNeural layer)", where="model_data/unit_type")
    inputs, hidden = _int(data, "input_size", 1), _int(data, "hidden_size")
    layers, outputs = _int(data, "num_layers", 1), _int(data, "output_size", 1)
    skip = _int(data, "skip", 0, low=0)
    if skip not in (0, 1):
        raise UnsupportedError(f"skip {skip}: RTNeural's in_skip adds input feature 0 only (skip 0 or 1)", where="model_data/skip")
    if skip and outputs != 1:
        raise UnsupportedError(f"skip 1 with output_size {outputs}: in_skip adds to a 1-feature output", where="model_data/skip")
    bias = data.get("bias_fl", True)
    gates = 4 if unit == "LSTM" else 3
    read = {"unit": unit, "input_size": inputs, "hidden": hidden, "skip": skip, "layers": []}
    for index in range(layers):
        size = inputs if index == 0 else hidden
        layer = {"w_ih": _tensor(state, f"rec.weight_ih_l{index}", (gates * hidden, size)),
                 "w_hh": _tensor(state, f"rec.weight_hh_l{index}", (gates * hidden, hidden))}
        for name in ("bias_ih", "bias_hh"):
            key = f"rec.{name}_l{index}"
            layer[name] = _tensor(state, key, (gates * hidden,)) if (bias or key in state) else np.zeros(gates * hidden)
        read["layers"].append(layer)
    read["lin_w"] = _tensor(state, "lin.weight", (outputs, hidden))
    read["lin_b"] = _tensor(state, "lin.bias", (outputs,)) if ("lin.bias" in state or bias) else np.zeros(outputs)
    return read


def to_model(read: dict) -> Model:
    """The RTNeural layer list: PyTorch gate blocks reordered to RTNeural's, biases as RTNeural keeps them."""
    from toolchain.graph_json import with_in_skip

    layers = []
    for layer in read["layers"]:
        if read["unit"] == "LSTM":
            layers.append(LSTM(f32(reorder_gates(layer["w_ih"], LSTM_TORCH, LSTM_CANONICAL)),
                               f32(reorder_gates(layer["w_hh"], LSTM_TORCH, LSTM_CANONICAL)),
                               f32(reorder_gates(layer["bias_ih"] + layer["bias_hh"], LSTM_TORCH, LSTM_CANONICAL)), source="rec"))
        else:
            layers.append(GRU(*(f32(reorder_gates(layer[k], GRU_TORCH, GRU_CANONICAL)) for k in ("w_ih", "w_hh", "bias_ih", "bias_hh")),
                              source="rec"))
    layers.append(Dense(f32(read["lin_w"]), f32(read["lin_b"]), source="lin"))
    body = Model(read["input_size"], layers)
    return (with_in_skip(body) if read["skip"] else body).validate()


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def simple_rnn_float64(read: dict, frames: np.ndarray) -> np.ndarray:
    """SimpleRNN on ``frames [F, in]`` in float64, written from PyTorch's LSTM/GRU equations (not RTNeural's)."""
    x = np.asarray(frames, np.float64)
    for layer in read["layers"]:
        hidden = layer["w_hh"].shape[1]
        h, c, out = np.zeros(hidden), np.zeros(hidden), np.empty((len(x), hidden))
        for t, frame in enumerate(x):
            gi = layer["w_ih"] @ frame + layer["bias_ih"]
            gh = layer["w_hh"] @ h + layer["bias_hh"]
            if read["unit"] == "LSTM":  # i, f, g, o
                i, f, g, o = np.split(gi + gh, 4)
                c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
                h = _sigmoid(o) * np.tanh(c)
            else:  # r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
                r = _sigmoid(gi[:hidden] + gh[:hidden])
                z = _sigmoid(gi[hidden:2 * hidden] + gh[hidden:2 * hidden])
                n = np.tanh(gi[2 * hidden:] + r * gh[2 * hidden:])
                h = (1 - z) * n + z * h
            out[t] = h
        x = out
    y = x @ read["lin_w"].T + read["lin_b"]
    return y + np.asarray(frames, np.float64)[:, :1] if read["skip"] else y


def check_input(input_size: int, frames: int = CHECK_FRAMES, seed: int = 0) -> np.ndarray:
    """Guitar-like audio on feature 0 (a decaying 110 Hz note plus noise), slow knob ramps on the others."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / 48000.0
    audio = 0.7 * np.sin(2 * np.pi * 110 * t) * np.exp(-3 * t) + 0.02 * rng.standard_normal(frames)
    knobs = [np.linspace(0, 1, frames) ** (k + 1) for k in range(input_size - 1)]
    return np.stack([audio, *knobs], axis=1).astype(np.float32)


def convert_guitarml(document: dict, source: Path, target: Path) -> tuple[Model, float]:
    """Write the RTNeural JSON of a GuitarML document to ``target`` and return (model, max abs error of the
    engine on the written file against the float64 SimpleRNN). The file is removed again if the check fails."""
    from reference_engine.model import load_engine
    from toolchain import __version__
    from toolchain.check import run_engine
    from toolchain.errors import CheckFailed
    from toolchain.graph_json import write_model

    try:
        read = read_simple_rnn(document)
        model = to_model(read)
    except InputError as error:
        raise error.with_file(source)
    model.metadata["kelly_tc"] = {"producer": f"kelly-tc {__version__}", "source": source.name,
                                  "notes": [f"GuitarML SimpleRNN ({read['unit']}, hidden {read['hidden']}, skip {read['skip']})"]}
    write_model(model, target)
    frames = check_input(read["input_size"])
    error = float(np.max(np.abs(run_engine(load_engine(target), frames, None) - simple_rnn_float64(read, frames))))
    if not error <= CHECK_ATOL:
        target.unlink(missing_ok=True)
        raise CheckFailed(f"the written model differs from a float64 evaluation of the state_dict by {error:.3g} "
                          f"(> {CHECK_ATOL:g}) on {len(frames)} frames; nothing written", file=source)
    return model, error
