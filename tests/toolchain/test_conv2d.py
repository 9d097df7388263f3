"""RTNeural's conv2d and batchnorm2d: layer records, JSON, engine kernels and the ONNX converter.

Independent references: a float64 torch ``conv2d`` on the whole sequence (time padded causally, features
padded by TensorFlow's "same" rule) for the engine; onnxruntime on the exported model (``check``, with its
half-way reset) for the converter, in all three exporter modes. Tolerance 1e-5 absolute: float32 sums of
at most ~60 products of O(1) values (measured worst case 2.4e-7 on these models).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_engine.model import Engine
from tests.conftest import require_modules
from toolchain.errors import InputError, UnsupportedError
from toolchain.layers import BatchNorm2D, Conv2D, Dense, Model, conv2d_pads, f32
from toolchain.rtneural_json import model_from_json, model_to_json

ATOL = 1e-5


def conv2d_layer(rng, features, cin, cout, kt, kf, dilation=1, stride=1, valid=True, activation=""):
    return Conv2D(f32(rng.normal(size=(cout, cin, kt, kf)) / np.sqrt(cin * kt * kf)), f32(rng.normal(size=cout)),
                  num_features_in=features, dilation=dilation, stride=stride, valid_pad=valid, activation=activation)


def batchnorm2d_layer(rng, features, channels):
    return BatchNorm2D(f32(rng.uniform(0.5, 1.5, channels)), f32(rng.uniform(-0.5, 0.5, channels)),
                       f32(rng.uniform(-0.5, 0.5, channels)), f32(rng.uniform(0.5, 2.0, channels)), num_features=features)


def torch_reference(layers, frames: np.ndarray, features: int, channels: int) -> np.ndarray:
    """float64 torch over the whole sequence; frames are feature-major [T, F * C] maps."""
    torch = require_modules("torch")
    count = frames.shape[0]
    x = torch.tensor(frames.reshape(count, features, channels).transpose(2, 0, 1)[None], dtype=torch.float64)
    for layer in layers:
        if isinstance(layer, Conv2D):
            left, right = conv2d_pads(layer.num_features_in, layer.kernel_size_feature, layer.stride, layer.valid_pad)
            x = torch.nn.functional.pad(x, (left, right, (layer.kernel_size_time - 1) * layer.dilation, 0))
            x = torch.nn.functional.conv2d(x, torch.tensor(layer.weight, dtype=torch.float64), torch.tensor(layer.bias, dtype=torch.float64),
                                           stride=(1, layer.stride), dilation=(layer.dilation, 1))
            x = torch.relu(x) if layer.activation == "relu" else x
        else:
            vector = lambda v: torch.tensor(v, dtype=torch.float64)[:, None, None]  # noqa: E731
            x = (x - vector(layer.mean)) * vector(layer.gamma / np.sqrt(layer.var.astype(np.float64) + layer.epsilon)) + vector(layer.beta)
    return x[0].numpy().transpose(1, 2, 0).reshape(count, -1)


# ------------------------------------------------------------------------------------------ engine
@settings(max_examples=25, deadline=None)
@given(features=st.integers(3, 11), cin=st.integers(1, 3), cout=st.integers(1, 4), kt=st.integers(1, 3),
       kf=st.integers(1, 4), dilation=st.integers(1, 3), stride=st.integers(1, 3), valid=st.booleans(), seed=st.integers(0, 99))
def test_engine_matches_a_float64_convolution_of_the_whole_sequence(features, cin, cout, kt, kf, dilation, stride, valid, seed):
    require_modules("torch")
    kf = min(kf, features)
    rng = np.random.default_rng(seed)
    conv = conv2d_layer(rng, features, cin, cout, kt, kf, dilation, stride, valid, activation="relu")
    norm = batchnorm2d_layer(rng, conv.num_features_out, cout)
    engine = Engine(Model(features * cin, [conv, norm]))
    frames = rng.normal(size=(13, features * cin)).astype(np.float32)
    engine.reset()
    np.testing.assert_allclose(engine.run(frames), torch_reference([conv, norm], frames, features, cin), atol=ATOL, rtol=0)
    engine.reset()  # reset() forgets the history: the second half alone equals a fresh run of it
    np.testing.assert_allclose(engine.run(frames[6:]), torch_reference([conv, norm], frames[6:], features, cin), atol=ATOL, rtol=0)


def test_same_padding_follows_tensorflow_odd_total_goes_right():
    # n=7, k=4, s=2: total pad max(4 - 7 % 2, 0) = 3 -> 1 left, 2 right; 4 outputs (ceil(7/2)).
    assert conv2d_pads(7, 4, 2, False) == (1, 2)
    assert conv2d_pads(8, 3, 2, False) == (0, 1)
    assert conv2d_pads(9, 3, 1, True) == (0, 0)
    rng = np.random.default_rng(0)
    assert conv2d_layer(rng, 7, 1, 1, 1, 4, stride=2, valid=False).num_features_out == 4
    assert conv2d_layer(rng, 7, 1, 1, 1, 4, stride=2, valid=True).num_features_out == 2


# ------------------------------------------------------------------------------------------ JSON
def crnn_model(rng) -> Model:
    conv = conv2d_layer(rng, 13, 2, 3, 3, 3, dilation=2, stride=2, valid=False, activation="relu")
    norm = batchnorm2d_layer(rng, conv.num_features_out, 3)
    head = Dense(f32(rng.normal(size=(5, norm.out_size))), f32(rng.normal(size=5)), activation="softmax")
    return Model(26, [conv, norm, head])


def test_json_uses_rtneural_keys_and_round_trips_exactly():
    model = crnn_model(np.random.default_rng(1))
    document = json.loads(json.dumps(model_to_json(model)))
    assert document["in_shape"] == [None, None, 13, 2]
    conv, norm = document["layers"][:2]
    assert {k: conv[k] for k in ("kernel_size_time", "kernel_size_feature", "dilation", "strides", "num_filters_in",
                                 "num_features_in", "num_filters_out", "padding", "shape")} == {
        "kernel_size_time": 3, "kernel_size_feature": 3, "dilation": 2, "strides": 2, "num_filters_in": 2,
        "num_features_in": 13, "num_filters_out": 3, "padding": "same", "shape": [None, None, 7, 3]}
    assert np.asarray(conv["weights"][0]).shape == (3, 3, 2, 3)  # [Kt][Kf][in][out], RTNeural's loadConv2D
    assert (norm["num_filters_in"], norm["num_features_in"], norm["shape"]) == (3, 7, [None, None, 7, 3])
    again = model_from_json(document)
    for before, after in zip(model.layers, again.layers):
        assert type(before) is type(after)
        for name, array in before.arrays().items():
            np.testing.assert_array_equal(getattr(after, name), array)
    assert (again.layers[0].stride, again.layers[0].dilation, again.layers[0].valid_pad) == (2, 2, False)


@pytest.mark.parametrize("path, value, message", [
    (("layers", 0, "padding"), "causal", "expected \"valid\" or \"same\""),
    (("layers", 0, "kernel_size_time"), 2, "kernel_size_time is 2"),
    (("layers", 1, "num_filters_in"), [3], "not an array"),
    (("layers", 0, "num_features_in"), 12, "weights take 24 inputs but the previous layer gives 26"),
    (("layers", 0, "kernel_size_feature"), 14, "kernel axis 1 has 3 entries"),
])
def test_bad_conv2d_files_are_refused_naming_the_field(path, value, message):
    document = json.loads(json.dumps(model_to_json(crnn_model(np.random.default_rng(2)))))
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(InputError, match=message):
        model_from_json(document)


# ------------------------------------------------------------------------------------------ converter
@pytest.fixture(scope="module")
def exported_2d(tmp_path_factory):
    """Every model of tests/fixtures/conv2d_models.py in every export mode, converted (once per module)."""
    require_modules("torch", "onnxscript")
    import torch

    from tests.fixtures.conv2d_models import EXPORT_MODES, MODELS, TIME_STEPS, export, randomize_2d_
    from toolchain.convert import convert_file

    folder = tmp_path_factory.mktemp("conv2d")
    result = {}
    for index, (name, cls) in enumerate(MODELS.items()):
        torch.manual_seed(2000 + index)
        model = randomize_2d_(cls())
        example = model.example(TIME_STEPS)
        for mode in EXPORT_MODES:
            onnx_path = export(model, example, folder / f"{name}-{mode}.onnx", mode)
            json_path = folder / f"{name}-{mode}.json"
            result[f"{name}-{mode}"] = (onnx_path, json_path, convert_file(onnx_path, json_path))
    return result


EXPECTED_KINDS = {  # torch's exporters fold the BatchNorm2d after a Conv2d into it; a leading one stays
    "crnn": ["conv2d:relu", "conv2d", "gru", "dense:softmax"],
    "crnn_channel_major": ["conv2d:tanh", "dense", "lstm"],
    "conv2d_map_out": ["batchnorm2d", "conv2d:elu"],
    "feature_first": ["conv2d:relu", "dense"],
}
CASES = [f"{name}-{mode}" for name in EXPECTED_KINDS for mode in ("legacy", "dynamo", "dynamo-dynamic")]


@pytest.mark.torch
@pytest.mark.parametrize("case", CASES)
def test_converted_2d_models_match_onnxruntime_with_the_half_way_reset(exported_2d, case):
    from toolchain.check import check_files

    onnx_path, json_path, model = exported_2d[case]
    kinds = [layer.kind + (f":{layer.activation}" if getattr(layer, "activation", "") else "") for layer in model.layers]
    assert kinds == EXPECTED_KINDS[case.rsplit("-", 2)[0] if case.endswith("dynamo-dynamic") else case.rsplit("-", 1)[0]]
    report = check_files(onnx_path, json_path, frames=None if case.endswith("-dynamo") else 50, atol=ATOL)
    assert report.runtime == "onnxruntime" and len(report.comparisons) == 2
    assert report.passed, [(c.label, c.max_abs_error) for c in report.comparisons]


@pytest.mark.torch
def test_a_channel_major_flatten_is_absorbed_by_the_next_layer_and_a_feature_major_one_is_the_frame(exported_2d):
    """The proof that flattening order = RTNeural's frame layout: the same conv weights, flattened
    feature-major (no change) and channel-major (the dense layer's inputs permuted), both match onnxruntime
    above; here the permutation is shown to be a real one (the un-permuted dense would be wrong)."""
    onnx_path, json_path, model = exported_2d["crnn_channel_major-legacy"]
    notes = json.loads(json_path.read_text())["kelly_tc"]["notes"]
    assert any("channel-major" in note for note in notes)
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(onnx_path))
    matrices = [numpy_helper.to_array(t) for t in proto.graph.initializer if numpy_helper.to_array(t).shape in ((11, 25), (25, 11))]
    onnx_weight = matrices[0] if matrices[0].shape == (11, 25) else matrices[0].T
    dense = model.layers[1]
    assert not np.array_equal(dense.weight, onnx_weight)
    order = (np.arange(5)[None, :] * 5 + np.arange(5)[:, None]).reshape(-1)  # RTNeural f*C+c <- ONNX c*F+f
    np.testing.assert_array_equal(dense.weight, onnx_weight[:, order])


def _conv_graph(tmp_path, module, channels=2, features=9):
    import torch

    from tests.fixtures.conv2d_models import export

    module.time_axis, module.out_time_axis = 2, getattr(module, "out_time_axis", 2)  # what export() reads off a MapModel
    return export(module.eval(), torch.randn(1, channels, 20, features), tmp_path / "m.onnx", "legacy")


@pytest.mark.torch
@pytest.mark.parametrize("build, message", [
    (lambda nn: nn.Conv2d(2, 3, 3, padding=1), "pads the time axis .* on the right"),
    (lambda nn: nn.Conv2d(2, 4, (1, 3), groups=2), "no groups"),
    (lambda nn: nn.Conv2d(2, 3, (1, 3), dilation=(1, 2)), "dilates time only"),
    (lambda nn: nn.Conv2d(2, 3, (1, 3), stride=(2, 1)), "stride 2 over time"),
    (lambda nn: nn.Conv2d(2, 3, (1, 3), padding=(0, 2)), "pads the feature axis"),
])
def test_2d_convolutions_rtneural_cannot_stream_are_refused(tmp_path, build, message):
    require_modules("torch")
    from torch import nn

    from toolchain.convert import convert_file

    path = _conv_graph(tmp_path, build(nn))
    with pytest.raises(UnsupportedError, match=message):
        convert_file(path, tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()


@pytest.mark.torch
def test_a_channel_major_map_with_no_layer_after_it_is_refused(tmp_path):
    require_modules("torch")
    import torch
    from torch import nn

    from toolchain.convert import convert_file

    class Flat(nn.Module):
        out_time_axis = 1

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, (1, 3))

        def forward(self, x):
            y = self.conv(x)
            return torch.tanh(y.permute(0, 2, 1, 3).reshape(1, y.shape[2], -1))

    with pytest.raises(UnsupportedError, match="channel-major and no weighted layer follows"):
        convert_file(_conv_graph(tmp_path, Flat()), tmp_path / "m.json")


# ------------------------------------------------------------------------------------------ compression
@pytest.mark.torch
def test_structured_pruning_removes_conv2d_filters_through_the_causal_pad(exported_2d, tmp_path):
    """dynamo writes the causal F.pad with constant pads: the first conv2d's filters are pruned through the
    Pad (quant/rules/pad.py) into the second conv2d's input channels; the second conv2d's filters stay,
    with the reason (the per-frame flatten cannot follow them)."""
    from quant.workflow import prune_file
    from toolchain.check import check_files
    from toolchain.convert import convert_file

    onnx_path, _, original = exported_2d["crnn-dynamo"]
    pruned_path = tmp_path / "pruned.onnx"
    report = prune_file(onnx_path, pruned_path, amount=0.5, latency=False)
    model = convert_file(pruned_path, tmp_path / "pruned.json")
    assert (original.layers[0].filters_out, model.layers[0].filters_out, model.layers[1].filters_in) == (4, 2, 2)
    assert model.layers[1].filters_out == original.layers[1].filters_out
    assert [(p["op_type"], p["units_before"], p["units_after"]) for p in report["pruned_layers"]][0] == ("Conv", 4, 2)
    assert any("(Conv)" in kept["node"] and "(Reshape), which cannot follow them" in kept["reason"] for kept in report["kept_layers"])
    assert check_files(pruned_path, tmp_path / "pruned.json", atol=ATOL).passed


@pytest.mark.torch
def test_int8_conv2d_weights_land_on_the_int8_grid_and_run_in_the_int8_kernel(exported_2d, tmp_path):
    """``quantize`` writes per-filter int8 conv2d weights (QDQ ONNX); ``convert --int8`` keeps them as int8
    with one scale per filter (kernels/int8.py conv2d_int8), and both files match onnxruntime on the QDQ model."""
    from quant.int8_json import quantize_model, read_int8_model, write_int8_model
    from quant.workflow import quantize_file
    from toolchain.check import check_files
    from toolchain.convert import convert_file

    onnx_path, _, _ = exported_2d["crnn-dynamo"]
    quantized = tmp_path / "q.onnx"
    quantize_file(onnx_path, quantized, compare_dynamic=False)
    model = convert_file(quantized, tmp_path / "q.json")
    for layer in model.layers[:2]:
        rows = layer.weight.reshape(layer.filters_out, -1).astype(np.float64)
        steps = rows / (np.abs(rows).max(axis=1, keepdims=True) / 127)  # symmetric per-filter scale: max -> 127
        np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
    int8_path = write_int8_model(quantize_model(model), tmp_path / "q.int8.json")
    document = json.loads(int8_path.read_text())
    assert [("weights_int8" in entry) for entry in document["layers"]] == [True, True, True, True]
    loaded = read_int8_model(int8_path)
    np.testing.assert_array_equal(loaded.quantized[0]["weight"].values.astype(np.float32) * loaded.quantized[0]["weight"].scale[:, None, None, None],
                                  model.layers[0].weight)  # the int8 values times their scales ARE the QDQ weights
    for path in (tmp_path / "q.json", int8_path):
        report = check_files(quantized, path, atol=ATOL)
        assert report.passed, (path.name, [(c.label, c.max_abs_error) for c in report.comparisons])
