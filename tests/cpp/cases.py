"""The models checked against the real RTNeural, as ``Case`` lists, one builder per model source.

Random-weight models of every layer kind are built straight from ``toolchain.layers`` records, with
odd sizes (37, 13, 7) so a transposed or mis-split weight cannot pass by symmetry, and a reference
pair computed by the reference engine (so the generated header's ``self_test()`` checks RTNeural's
compile-time API against our engine from inside C++).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolchain.cpp.reference_pair import set_reference_pair
from toolchain.layers import ACTIVATIONS, GRU, LSTM, Activation, BatchNorm, Conv1D, Dense, Model, PRelu, f32
from toolchain.rtneural_json import read_model, write_model

FRAMES = 67  # long enough for every conv1d history (the widest here spans 10 frames) to fill and roll
REFERENCE_FRAMES = 9


@dataclass(frozen=True)
class Case:
    name: str
    json_path: Path
    frames: np.ndarray  # [T, in] float32
    expected: np.ndarray | None = None  # an independent expected output, when the source has one
    tolerance: float | None = None  # ... and the tolerance its producer states

    def model(self) -> Model:
        return read_model(self.json_path)


# ------------------------------------------------------------------------ random models per layer kind
def _weights(rng, *shape, fan_in):
    return f32(rng.standard_normal(shape) / np.sqrt(fan_in))


def dense(rng, n_in, n_out, activation=""):
    return Dense(_weights(rng, n_out, n_in, fan_in=n_in), _weights(rng, n_out, fan_in=4), activation=activation)


def lstm(rng, n_in, hidden):
    return LSTM(_weights(rng, 4 * hidden, n_in, fan_in=n_in), _weights(rng, 4 * hidden, hidden, fan_in=hidden),
                _weights(rng, 4 * hidden, fan_in=4))


def gru(rng, n_in, hidden):
    return GRU(_weights(rng, 3 * hidden, n_in, fan_in=n_in), _weights(rng, 3 * hidden, hidden, fan_in=hidden),
               _weights(rng, 3 * hidden, fan_in=4), _weights(rng, 3 * hidden, fan_in=4))


def conv1d(rng, n_in, n_out, taps, dilation=1, groups=1, activation=""):
    per_group = n_in // groups
    return Conv1D(_weights(rng, n_out, per_group, taps, fan_in=per_group * taps), _weights(rng, n_out, fan_in=4),
                  dilation=dilation, groups=groups, activation=activation)


def batchnorm(rng, size):
    return BatchNorm(f32(rng.uniform(0.5, 1.5, size)), f32(rng.uniform(-0.5, 0.5, size)),
                     f32(rng.uniform(-0.5, 0.5, size)), f32(rng.uniform(0.5, 2.0, size)), epsilon=1e-3)


def layer_kind_models(rng) -> dict[str, Model]:
    """Every layer kind, every activation, stacks and the size-1 input paths RTNeural special-cases."""
    models = {f"dense_{a or 'linear'}": Model(7, [dense(rng, 7, 37, a), dense(rng, 37, 5)]) for a in ACTIVATIONS}
    models.update({
        "dense_input_1": Model(1, [dense(rng, 1, 13, "tanh"), dense(rng, 13, 1)]),
        "lstm": Model(7, [lstm(rng, 7, 37)]),
        "lstm_input_1": Model(1, [lstm(rng, 1, 13), dense(rng, 13, 1)]),
        "lstm_stack": Model(5, [lstm(rng, 5, 11), lstm(rng, 11, 37)]),
        "gru": Model(7, [gru(rng, 7, 37)]),
        "gru_input_1": Model(1, [gru(rng, 1, 9), dense(rng, 9, 1, "sigmoid")]),
        "conv1d": Model(7, [conv1d(rng, 7, 11, 3)]),
        "conv1d_dilated": Model(7, [conv1d(rng, 7, 11, 4, dilation=3, activation="tanh")]),
        "conv1d_groups": Model(12, [conv1d(rng, 12, 9, 2, dilation=2, groups=3, activation="relu")]),
        "conv1d_depthwise": Model(13, [conv1d(rng, 13, 13, 5, dilation=2, groups=13)]),
        "conv1d_single_tap": Model(7, [conv1d(rng, 7, 5, 1, activation="elu")]),
        "batchnorm": Model(13, [batchnorm(rng, 13)]),
        "prelu_shared": Model(13, [PRelu(f32([0.23]), size=13)]),
        "prelu_per_channel": Model(13, [PRelu(f32(rng.uniform(0.05, 0.5, 13)), size=13)]),
    })
    for activation in ACTIVATIONS[1:]:
        models[f"activation_{activation}"] = Model(7, [dense(rng, 7, 11), Activation(activation=activation, size=11)])
    models["mixed_stack"] = Model(5, [
        dense(rng, 5, 37, "tanh"), conv1d(rng, 37, 16, 3, dilation=2, groups=1), batchnorm(rng, 16),
        PRelu(f32(rng.uniform(0.05, 0.5, 16)), size=16), lstm(rng, 16, 23), gru(rng, 23, 11),
        conv1d(rng, 11, 11, 2, groups=11, activation="sigmoid"), dense(rng, 11, 3, "softmax")])
    return models


def layer_kind_cases(folder: Path) -> list[Case]:
    """Write every layer-kind model (with an engine-computed reference pair) and its input frames."""
    from reference_engine.model import Engine

    rng = np.random.default_rng(9)
    cases = []
    for name, model in layer_kind_models(np.random.default_rng(8)).items():
        reference_input = f32(rng.standard_normal((REFERENCE_FRAMES, model.input_size)))
        engine = Engine(model.validate())
        engine.reset()
        set_reference_pair(model, reference_input, engine.run(reference_input))
        path = write_model(model, folder / f"{name}.json")
        cases.append(Case(name, path, f32(rng.standard_normal((FRAMES, model.input_size)) * 1.5)))
    return cases


# ------------------------------------------------------------------------------------ other sources
def testdata_cases(testdata: Path) -> list[Case]:
    """RTNeural's own models with the outputs RTNeural's tests expect (1e-6; GRU 5e-6, as they state)."""
    cases = []
    for path in sorted((testdata / "models").glob("*.json")):
        if path.stem.startswith("bad_"):
            continue
        x = np.loadtxt(testdata / "test_data" / f"{path.stem}_x_python.csv", delimiter=",", ndmin=2)
        y = np.loadtxt(testdata / "test_data" / f"{path.stem}_y_python.csv", delimiter=",", ndmin=2)
        cases.append(Case(f"rtneural_{path.stem}", path, f32(x), y, 5e-6 if path.stem.startswith("gru") else 1e-6))
    return cases


def catalog_cases(catalog) -> list[Case]:
    """The converter's catalogue: torch models of every kind, both exporters, converted to JSON."""
    return [Case(f"catalog_{entry.id}", Path(entry.json_path), f32(entry.frames)) for entry in catalog]


def kelly_cases(kelly_models) -> list[Case]:
    """The five Kelly models as ``kelly-tc export`` writes them (with PyTorch's reference pair)."""
    rng = np.random.default_rng(12)
    return [Case(f"kelly_{name}", Path(path), f32(rng.standard_normal((FRAMES, read_model(path).input_size))))
            for name, path in kelly_models.json_paths.items()]


def int8_folded_cases(folder: Path) -> list[Case]:
    """INT8-quantized models (``quant.int8``, per-channel QDQ ONNX) converted to float JSON: the weights
    are q * scale exactly, the file real RTNeural loads. Built from the compression tests' ONNX models."""
    from quant import int8
    from quant.onnx_graph import save_model
    from tests.quant.models import KINDS
    from toolchain.convert import convert_file

    rng, cases = np.random.default_rng(13), []
    for index, (kind, build) in enumerate(KINDS.items()):
        onnx_path = save_model(int8.quantize_weights(build(np.random.default_rng(index + 1)), True).model, folder / f"{kind}.onnx")
        model = convert_file(onnx_path, folder / f"int8_{kind}.json")
        cases.append(Case(f"int8_{kind}", folder / f"int8_{kind}.json", f32(rng.standard_normal((FRAMES, model.input_size)))))
    return cases
